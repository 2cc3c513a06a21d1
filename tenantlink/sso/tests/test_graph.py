"""The leaver check's app-only Graph calls: where they go, how often a pass reads the discovery
document that says so (remembered per process, microsoft._cached), and which tokens a runner
keeps (answered here by FakeMicrosoft)."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenantlink.sso import graph, microsoft
from tenantlink.sso.microsoft import MicrosoftError
from tenantlink.sso.models import CachedDocument
from tenantlink.sso.tests.conftest import CONTOSO, FABRIKAM


class Clock:
    """time.monotonic for the modules, moved on by the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(graph, "_clock", clock)
    monkeypatch.setattr(microsoft, "_clock", clock)
    return clock


@pytest.fixture
def tenant(fake_microsoft):
    """Contoso approved the app with User.Read.All; three people are connected there, one disabled."""
    fake_microsoft.app_in.add(CONTOSO)
    fake_microsoft.roles_in.add(CONTOSO)
    people = [str(uuid.uuid4()) for _ in range(3)]
    fake_microsoft.accounts.update({people[0]: True, people[1]: False, people[2]: True})
    microsoft.discovery()  # in the shared cache already, as after the first sign-in
    microsoft._documents.clear()  # and a runner that has not read it yet
    return people


def ask(people):
    token, _roles = graph.app_only_token(CONTOSO)
    return graph.accounts_enabled(token, people)


def discovery_reads(queries):
    return sum("sso_cacheddocument" in query["sql"] for query in queries.captured_queries)


def graph_hosts(fake_microsoft):
    return [request.url.host for request in fake_microsoft.requests if request.url.path.startswith("/v1.0/")]


def set_graph_host(host):
    document = CachedDocument.objects.get(url__endswith="/organizations/v2.0/.well-known/openid-configuration")
    document.body = {**document.body, "msgraph_host": host}
    document.save()


def test_a_pass_reads_graphs_address_once_not_for_every_batch(fake_microsoft, tenant, clock):
    with CaptureQueriesContext(connection) as queries:
        for _batch in range(5):
            assert ask(tenant) == {tenant[0]: True, tenant[1]: False, tenant[2]: True}
    assert discovery_reads(queries) == 1
    assert graph_hosts(fake_microsoft) == ["graph.microsoft.com"] * 5


def test_graphs_address_is_read_again_after_a_minute(fake_microsoft, tenant, clock):
    ask(tenant)
    # Microsoft names another host (here: the authority's own, which a stand-in serves Graph on).
    set_graph_host("login.microsoftonline.com")
    clock.now += microsoft.DOCUMENT_MEMO_SECONDS - 1
    with CaptureQueriesContext(connection) as queries:
        ask(tenant)
    assert discovery_reads(queries) == 0
    clock.now += 1
    with CaptureQueriesContext(connection) as queries:
        ask(tenant)
    assert discovery_reads(queries) == 1
    assert graph_hosts(fake_microsoft) == ["graph.microsoft.com", "graph.microsoft.com", "login.microsoftonline.com"]


def test_the_token_goes_nowhere_but_graph_or_the_authority_whatever_the_document_says(fake_microsoft, tenant, clock):
    ask(tenant)
    set_graph_host("graph.example.net")
    clock.now += microsoft.DOCUMENT_MEMO_SECONDS
    with pytest.raises(MicrosoftError) as refused:
        ask(tenant)
    assert (refused.value.reason, refused.value.code) == ("bad_answer", "msgraph_host")
    assert graph_hosts(fake_microsoft) == ["graph.microsoft.com"]


def test_a_remembered_host_is_not_used_for_another_authority(fake_microsoft, tenant, clock, settings):
    ask(tenant)
    settings.ENTRA_AUTHORITY = "https://login.example.org"  # the operator changed the authority
    with CaptureQueriesContext(connection) as queries, pytest.raises(MicrosoftError):
        ask(tenant)  # its discovery document is asked for (here it names endpoints elsewhere)
    assert discovery_reads(queries) == 1
    assert graph_hosts(fake_microsoft) == ["graph.microsoft.com"]


def token_requests(fake_microsoft):
    return sum(request.url.path.endswith("/token") for request in fake_microsoft.requests)


def test_a_runner_keeps_the_tokens_of_a_bounded_number_of_tenants(fake_microsoft, monkeypatch):
    monkeypatch.setattr(graph, "TOKEN_CACHE_SIZE", 1)
    fake_microsoft.app_in.update({CONTOSO, FABRIKAM})
    graph.app_only_token(CONTOSO)
    graph.app_only_token(FABRIKAM)
    assert list(graph._app_tokens) == [FABRIKAM]  # the oldest is forgotten
    graph.app_only_token(FABRIKAM)
    assert token_requests(fake_microsoft) == 2
    graph.app_only_token(CONTOSO)
    assert token_requests(fake_microsoft) == 3


def test_a_token_is_used_until_a_minute_before_it_expires(fake_microsoft, clock):
    fake_microsoft.app_in.add(CONTOSO)
    graph.app_only_token(CONTOSO)
    clock.now += 3599 - 61  # FakeMicrosoft's tokens are valid for 3599 s
    graph.app_only_token(CONTOSO)
    assert token_requests(fake_microsoft) == 1
    clock.now += 1
    graph.app_only_token(CONTOSO)
    assert token_requests(fake_microsoft) == 2
