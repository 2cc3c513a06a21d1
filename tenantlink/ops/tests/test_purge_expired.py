"""The daily purge: each kind of leftover goes once it no longer matters, and nothing that still
does."""

import datetime
import io

from django.core.management import call_command
from django.utils import timezone

from tenantlink.accounts.models import Session, Throttle
from tenantlink.accounts.sessions import SessionStore
from tenantlink.audit.models import Action, AuditEvent
from tenantlink.sso.models import CachedDocument, PendingAuthorization


def purge():
    out = io.StringIO()
    call_command("purge_expired", stdout=out)
    return out.getvalue()


def ago(**delta):
    return timezone.now() - datetime.timedelta(**delta)


def test_it_forgets_old_throttle_counts_but_keeps_current_pauses():
    Throttle.objects.create(key="name:old", failures=3, window_started_at=ago(days=1))
    Throttle.objects.create(key="name:ended", failures=5, window_started_at=ago(days=1), locked_until=ago(days=1))
    Throttle.objects.create(key="name:paused", failures=5, locked_until=ago(minutes=-5))
    Throttle.objects.create(key="name:fresh", failures=1)

    output = purge()

    assert output.startswith("Deleted 2 expired throttle counts")
    assert set(Throttle.objects.values_list("key", flat=True)) == {"name:paused", "name:fresh"}


def test_counts_of_a_day_last_their_day():
    """The usernames a company found taken today, and the notice of wrong codes sent today: gone
    after the usual quarter of an hour, a company could check 50 more names, and a second notice
    go out the same day."""
    for key in ("taken-names:company:1", "notice:wrong-codes:user:1"):
        Throttle.objects.create(key=key, failures=50, window_started_at=ago(hours=2))
        Throttle.objects.create(key=key.replace(":1", ":2"), failures=50, window_started_at=ago(hours=25))

    purge()

    assert set(Throttle.objects.values_list("key", flat=True)) == {
        "taken-names:company:1",
        "notice:wrong-codes:user:1",
    }


def test_it_deletes_expired_sessions_only():
    for expiry in (ago(minutes=1), ago(minutes=-30)):
        session = SessionStore()
        session["x"] = 1
        session.create()
        Session.objects.filter(session_key=session.session_key).update(expire_date=expiry)

    assert "1 expired sessions" in purge()
    assert Session.objects.get().expire_date > timezone.now()


def pending(state_digest, expires_at):
    return PendingAuthorization.objects.create(
        state_digest=state_digest, purpose=PendingAuthorization.Purpose.SIGNIN, browser="b", expires_at=expires_at
    )


def test_it_deletes_microsoft_flows_whose_state_has_expired():
    pending("expired", ago(seconds=1))
    pending("waiting", ago(minutes=-5))

    assert "1 unfinished Microsoft flows" in purge()
    assert list(PendingAuthorization.objects.values_list("state_digest", flat=True)) == ["waiting"]


def test_it_deletes_microsoft_documents_nobody_has_fetched_for_a_month(settings):
    settings.ENTRA_METADATA_LIFETIME = 24 * 3600
    CachedDocument.objects.create(url="https://login.example/old", body={}, fetched_at=ago(days=31))
    CachedDocument.objects.create(url="https://login.example/in-use", body={}, fetched_at=ago(days=2))

    assert "1 old Microsoft documents" in purge()
    assert list(CachedDocument.objects.values_list("url", flat=True)) == ["https://login.example/in-use"]


def test_a_long_metadata_lifetime_keeps_documents_longer(settings):
    settings.ENTRA_METADATA_LIFETIME = 20 * 24 * 3600  # reused for 20 days: still in use at 31
    CachedDocument.objects.create(url="https://login.example/keys", body={}, fetched_at=ago(days=31))

    purge()

    assert CachedDocument.objects.exists()


def audit_event(created_at):
    return AuditEvent.objects.create(action=Action.SIGNED_OUT, actor_label="someone", created_at=created_at)


def test_it_deletes_audit_events_older_than_the_retention(settings):
    settings.AUDIT_RETENTION_DAYS = 730
    audit_event(ago(days=731))
    kept = audit_event(ago(days=729))

    output = purge()

    assert "Deleted 1 audit events from before" in output
    assert list(AuditEvent.objects.all()) == [kept]


def test_a_retention_of_zero_keeps_audit_events_forever(settings):
    settings.AUDIT_RETENTION_DAYS = 0
    audit_event(ago(days=3650))

    assert "Audit events are kept forever" in purge()
    assert AuditEvent.objects.count() == 1
