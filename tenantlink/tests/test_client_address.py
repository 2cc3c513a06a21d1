"""Which address the audit log and the sign-in throttle record for a request. X-Forwarded-For is
believed only as far as our own proxies wrote it, and whatever a proxy writes there (ports,
"unknown") never reaches the database as an address."""

import pytest

from tenantlink.audit.models import Action, AuditEvent
from tenantlink.lib.net import client_address

PROXY = "10.0.0.2"  # the TCP peer when the portal sits behind our load balancer


@pytest.fixture
def request_from(rf):
    def build(forwarded=None, remote=PROXY):
        headers = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            headers["HTTP_X_FORWARDED_FOR"] = forwarded
        return rf.get("/", **headers)

    return build


def test_without_proxies_the_header_is_ignored(request_from, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    # Mallory sends the header herself to blame someone else; the TCP peer is what counts.
    assert client_address(request_from("198.51.100.7", remote="203.0.113.9")) == "203.0.113.9"


def test_one_proxy_takes_the_entry_it_appended(request_from, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # Everything left of our proxy's entry came from the client and may be forged.
    assert client_address(request_from("198.51.100.7, 203.0.113.9")) == "203.0.113.9"
    assert client_address(request_from("203.0.113.9")) == "203.0.113.9"


def test_two_proxies_take_the_second_entry_from_the_right(request_from, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(request_from("198.51.100.7, 203.0.113.9, 10.0.0.1")) == "203.0.113.9"


def test_too_few_entries_fall_back_to_the_peer(request_from, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_address(request_from("203.0.113.9")) == PROXY
    assert client_address(request_from()) == PROXY


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),  # one spelling per client, for the throttle's count
        ("::ffff:203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9 ", "203.0.113.9"),
    ],
)
def test_ports_and_spellings_are_normalised(request_from, settings, forwarded, address):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request_from(forwarded)) == address


@pytest.mark.parametrize(
    "forwarded",
    ["unknown", "203.0.113.9:http", "203.0.113.999", "not-an-address", "[2001:db8::1", "fe80::1%eth0", "'; drop"],
)
def test_garbage_falls_back_to_the_peer(request_from, settings, forwarded):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request_from(forwarded)) == PROXY


def test_no_valid_address_at_all_is_empty(request_from, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request_from("unknown", remote="unix:/run/portal.sock")) == ""
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(request_from(remote="")) == ""


def test_a_port_in_the_header_does_not_break_sign_in(client, member, settings):
    settings.TRUSTED_PROXY_COUNT = 1

    response = client.post(
        "/signin/", {"username": "bob", "password": "not his password"}, HTTP_X_FORWARDED_FOR="203.0.113.9:51234"
    )

    assert response.status_code == 200  # the sign-in page again, with its error, not a crash
    assert "We could not sign you in" in response.content.decode()
    [event] = AuditEvent.objects.filter(action=Action.SIGNIN_FAILED)
    assert event.client_ip == "203.0.113.9" and event.target_label == "bob"
