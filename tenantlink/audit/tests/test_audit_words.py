"""The audit log in the viewer's words: processes named in the viewer's language rather than by
their internal labels, the action's name rather than its code, details by translated names with
known values (reasons, policies, methods) translated, and stored UTC times shown in the viewer's
time zone and language. The CSV export keeps the stored machine values."""

import csv
import datetime
import io
import re

from django.test import Client

from tenantlink.accounts.models import User
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.conftest import sign_in

BEN_OID = "15550e69-065f-4d2c-b54d-9fd19885ed4c"


def viewer(admin, language, time_zone=""):
    admin.language, admin.time_zone = language, time_zone
    admin.save(update_fields=["language", "time_zone"])
    client = Client()
    sign_in(client, admin)
    return client


def facts(page):
    """The event page's facts, {name: value}, tags removed."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page, re.S)
    return {name: re.sub(r"<[^>]+>", "", value).strip() for name, value in pairs}


def who_column(page):
    return re.findall(r"</a></td>\s*<td>(.*?)</td>", page)


def recorded(action, **fields):
    """The event as AuditEvent.objects.record writes it (which does not read back its id)."""
    AuditEvent.objects.record(action, **fields)
    return AuditEvent.objects.latest("id")


def leaver_event(contoso, member):
    return recorded(
        Action.SSO_LEAVER,
        actor_label="leaver-check",
        company=contoso,
        target=member,
        reason="disabled",
        policy="deactivate",
        tenant="7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47",
        oid=BEN_OID,
        microsoft_username="ben@contoso.onmicrosoft.com",
    )


def test_the_log_names_the_leaver_check_and_the_command_line_in_the_viewers_language(admin, contoso, member):
    leaver_event(contoso, member)
    AuditEvent.objects.record(Action.SECOND_FACTOR_RESET, actor_label="command line", target=member)

    client = viewer(admin, "sv")
    swedish = who_column(client.get("/company/audit/").content.decode())
    assert "Avgångskontroll" in swedish
    assert "leaver-check" not in swedish and "command line" not in swedish

    User.objects.filter(pk=admin.pk).update(language="en")
    english = who_column(client.get("/company/audit/").content.decode())
    assert "Command line" in english and "Leaver check" in english


def test_an_event_page_shows_the_actions_name_and_its_details_in_the_viewers_language(admin, contoso, member):
    event = leaver_event(contoso, member)

    page = viewer(admin, "fi").get(f"/company/audit/{event.pk}/").content.decode()

    shown = facts(page)
    assert shown["Kuka"] == "Lähtijätarkistus"
    assert shown["Tapahtuma"] == "Pääsy poistettu: Microsoft-tili poistettu käytöstä tai poistettu kokonaan"
    assert shown["Syy"] == "Microsoft-tili on poistettu käytöstä"
    assert shown["Kun joku lähtee"] == "Poista portaalin käyttäjä käytöstä"
    assert shown["Vuokraajan tunnus"] == "7f3c2a9e-1d4b-4e8a-9c6f-2b5d8e1a3c47"  # an identifier stays as it is
    assert shown["Microsoft-käyttäjätunnus"] == "ben@contoso.onmicrosoft.com"
    assert "sso.leaver" not in page and "deactivate" not in page


def test_a_time_in_the_details_is_shown_in_the_viewers_time_zone_and_language(admin, contoso, member):
    until = datetime.datetime(2026, 11, 28, 11, 17, 20, 284106, tzinfo=datetime.UTC)
    event = recorded(Action.SIGNIN_LOCKED, target=member, outcome=Outcome.DENIED, attempts=10, until=until.isoformat())

    page = viewer(admin, "sv", "Europe/Helsinki").get(f"/company/audit/{event.pk}/").content.decode()

    assert "28 november 2026 13:17" in page  # 11:17 UTC is 13:17 in Helsinki
    assert until.isoformat() not in page and "+00:00" not in page


def test_a_sign_in_names_its_method(admin, contoso, member):
    event = recorded(Action.SIGNIN_SUCCEEDED, target=member, method="totp")

    shown = facts(viewer(admin, "en").get(f"/company/audit/{event.pk}/").content.decode())

    assert shown["Sign-in method"] == "Authenticator app"


def test_details_the_log_does_not_know_are_shown_as_stored(admin, contoso, member):
    event = recorded(Action.USER_CREATED, target=member, colour="teal", reason="a-new-reason")

    shown = facts(viewer(admin, "en").get(f"/company/audit/{event.pk}/").content.decode())

    assert shown["colour"] == "teal"
    assert shown["Reason"] == "a-new-reason"


def test_the_export_keeps_the_stored_values(admin, contoso, member):
    leaver_event(contoso, member)

    response = viewer(admin, "fi").get("/company/audit/export.csv", {"action": Action.SSO_LEAVER})
    [header, row] = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))

    record = dict(zip(header, row, strict=True))
    assert (record["actor"], record["action"]) == ("leaver-check", "sso.leaver")
    assert '"policy": "deactivate"' in record["details"] and '"reason": "disabled"' in record["details"]


def test_text_from_outside_that_looks_like_a_time_is_shown_as_sent(admin, contoso, member):
    # Microsoft's error code is whatever the callback's `error` said: anyone can send one that
    # looks like a time and is none (30 February), or one past the year 9999 in a time zone.
    forged = ["2024-02-30T10:00Z", "9999-12-31T23:59-12:00", "2024-01-01T10:00+99:00"]
    events = [recorded(Action.SIGNIN_FAILED, target=member, outcome=Outcome.DENIED, code=code) for code in forged]
    locked = recorded(Action.SIGNIN_LOCKED, target=member, outcome=Outcome.DENIED, until="2024-02-30T10:00Z")

    client = viewer(admin, "en", "Pacific/Kiritimati")
    for event, shown in [*zip(events, forged, strict=True), (locked, "2024-02-30T10:00Z")]:
        response = client.get(f"/company/audit/{event.pk}/")
        assert response.status_code == 200
        assert shown in response.content.decode()


def test_only_a_process_is_named_as_one(admin, contoso, member):
    # "leaver-check" is the leaver check's label; a person's event shows the person's name as it is.
    member_event = recorded(Action.SIGNED_OUT, actor=member, actor_label="leaver-check", target=member)

    client = viewer(admin, "en")
    shown = facts(client.get(f"/company/audit/{member_event.pk}/").content.decode())

    assert shown["Who"] == "leaver-check"
    # …and no new user may take the name, so that the log never mixes them up.
    new_user = {"username": "Leaver-Check", "display_name": "L", "email": "l@example.com", "role": "member"}
    response = client.post("/company/users/new/", {**new_user, "how": "invite"})
    assert "This username is reserved." in response.content.decode()
    assert not User.objects.filter(username__iexact="leaver-check").exists()


def test_changes_of_a_model_or_field_gone_since_read_as_stored():
    from tenantlink.audit import labels

    shown = dict(
        labels.details(
            {
                "model": "accounts.user",
                "fields": ["nickname", "is_active"],
                "changes": {"nickname": {"from": "x", "to": "y"}, "is_active": {"from": True, "to": False}},
            }
        )
    )
    assert shown["Changes"] == "nickname: x → y; Active: Yes → No"
    assert shown["Changed fields"] == "nickname, Active"
    gone = dict(labels.details({"model": "gone.model", "changes": {"a": {"to": 1}}}))
    assert gone["Changes"] == "a: 1" and gone["Kind of record"] == "gone.model"
