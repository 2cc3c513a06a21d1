"""Brute-force protection for password and second-factor attempts.

Attempts are counted per account and per client address. An attempt is counted *before* the
secret is checked and given back only when it succeeds, so many guesses sent at the same moment
cannot all slip through before the first failure is written: while a key's attempts are used up,
the next is refused unchecked. A pause starts only at a wrong secret that finds the key's attempts
used up: sign-in for that key then pauses for THROTTLE_LOCKOUT seconds, and the pause ends by
itself (a person pressing the button many times with the right password pauses nothing). The
start of a pause is audited with the time it ends; its end is audited too when an attempt comes
after it, at that attempt.
"""

import datetime
import hashlib
import ipaddress
import logging

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tenantlink.accounts.models import Throttle
from tenantlink.audit import labels
from tenantlink.audit.models import Action, AuditEvent, Outcome
from tenantlink.lib.net import client_address


def account_key(username, user=None):
    """The account's key: its id when the name belongs to a user (so every spelling that finds
    the user counts against the same key), otherwise a digest of the name (so a name that does
    not exist is throttled just the same, and is never stored as typed). Two names nobody has
    share a key exactly when they would find the same account, as User.objects.with_username
    looks it up (lower(), and usernames are ASCII): were "ｂｏｂ" (which finds nobody) to pause
    the key of "bob" as a name nobody has, the real bob's unpaused key would tell that he exists."""
    if user is not None:
        return f"user:{user.pk}"
    name = username.strip()
    name = name.lower() if name.isascii() else "\0" + name  # not ASCII: no username, and no other's key
    return "name:" + hashlib.sha256(name.encode()).hexdigest()


log = logging.getLogger(__name__)


def _address_key(request):
    """The key of the client's address: an IPv4 address, or an IPv6 /64, the network one
    subscriber gets (their devices take any address in it, so one address each would let one
    client spread its guesses over 2^64 keys). None when no address is known (a unix socket
    without a trusted proxy header): then only accounts are counted, rather than every client
    as one that a few wrong passwords would pause for everybody."""
    address = client_address(request)
    if not address:
        return None
    ip = ipaddress.ip_address(address)  # IPv4-mapped ones come as IPv4 already (lib/net.py)
    if ip.version == 6:
        ip = ipaddress.ip_network((ip, 64), strict=False)
    return f"address:{ip}"


def _keys(request, username, user):
    global _said_no_address
    keys = [(account_key(username, user), settings.THROTTLE_ACCOUNT_FAILURES)]
    address = _address_key(request)
    if address:
        keys.append((address, settings.THROTTLE_ADDRESS_FAILURES))
    elif not _said_no_address:  # the operator's to know, once per process
        _said_no_address = True
        log.warning(
            "A sign-in came without a client address (behind a proxy on a unix socket, set "
            "TRUSTED_PROXY_COUNT): attempts are counted per account only, not per client."
        )
    return keys


_said_no_address = False


def _label(key, user):
    if key.startswith("address:"):
        return key
    return user.username if user else labels.UNKNOWN_USERNAME  # a name nobody has is not kept


# One statement counts an attempt in the usual case: a new key gets its row with 1; a key that is
# not paused and has attempts left gets 1 more (or 1 again once its window has passed). It
# changes no row when the key is paused or has used up its attempts; begin_attempt then decides
# in Python. (An upsert with conditions, which the ORM cannot write; PostgreSQL and SQLite both
# run it.)
_COUNT = """
INSERT INTO {table} ({key}, {failures}, {started}, {locked}) VALUES (%s, 1, %s, NULL)
ON CONFLICT ({key}) DO UPDATE SET
    {failures} = CASE WHEN {table}.{started} < %s THEN 1 ELSE {table}.{failures} + 1 END,
    {started} = CASE WHEN {table}.{started} < %s THEN %s ELSE {table}.{started} END
WHERE {table}.{locked} IS NULL AND ({table}.{started} < %s OR {table}.{failures} < %s)
"""


# Giving one attempt back, and forgiving an account's failures after a complete sign-in: single
# statements too, not composed anew by the ORM each time (a password sign-in runs three).
_GIVE_BACK = "UPDATE {table} SET {failures} = {failures} - 1 WHERE {key} = %s AND {failures} > 0"
_FORGIVE = "UPDATE {table} SET {failures} = 0 WHERE {key} = %s AND {failures} > 0"
_PAUSE = "UPDATE {table} SET {locked} = %s WHERE {key} = %s AND {locked} IS NULL AND {failures} >= %s"


def _run(statement, params):
    """Run one of the statements above; how many rows it counted or changed."""
    quote = connection.ops.quote_name
    sql = statement.format(
        table=quote(Throttle._meta.db_table),
        key=quote("key"),
        failures=quote("failures"),
        started=quote("window_started_at"),
        locked=quote("locked_until"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _count(key, limit, now, window):
    """1 when one attempt was counted for `key` in a single statement, 0 when not (see _COUNT)."""
    now_value, cutoff = (connection.ops.adapt_datetimefield_value(moment) for moment in (now, now - window))
    return _run(_COUNT, [key, now_value, cutoff, cutoff, now_value, cutoff, limit])


def begin_attempt(request, username, user=None):
    """Count one attempt for the account and the address. False, and nothing counted, when
    either is paused: then the secret must not be checked at all."""
    return _begin(request, _keys(request, username, user), user)


def _begin(request, keys, user):
    now = timezone.now()
    window = datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
    # Always lock the rows in the same order (sorted by key), so that two requests cannot wait
    # for each other.
    keys = sorted(keys)
    with transaction.atomic():
        counted = [key for key, limit in keys if _count(key, limit, now, window)]
        if len(counted) == len(keys):
            return True
        # A pause starts or ends: give back what was counted (those rows are locked by this
        # transaction already) and decide key by key.
        Throttle.objects.filter(key__in=counted).update(failures=F("failures") - 1)
        allowed, ended = _count_slowly(keys, now, window)
    for key in ended:
        AuditEvent.objects.record(Action.SIGNIN_UNLOCKED, request=request, target=user, target_label=_label(key, user))
    return allowed


def _count_slowly(keys, now, window):
    """(allowed, keys whose pause ended), rows locked one by one. Not allowed while a key is
    paused or its attempts are used up (by failures, or by attempts still being checked)."""
    ended, throttles, allowed = [], [], True
    for key, limit in keys:
        throttle, _created = Throttle.objects.select_for_update().get_or_create(
            key=key, defaults={"window_started_at": now}
        )
        if throttle.locked_until and throttle.locked_until <= now:
            ended.append(throttle.key)
            throttle.failures, throttle.window_started_at, throttle.locked_until = 0, now, None
        elif not throttle.locked_until and now - throttle.window_started_at > window:
            throttle.failures, throttle.window_started_at = 0, now
        allowed = allowed and not throttle.locked_until and throttle.failures < limit
        throttles.append(throttle)
    for throttle in throttles:
        if allowed:
            throttle.failures += 1
        throttle.save()
    return allowed, ended


def attempt_failed(request, username, user=None):
    """The secret was wrong: the attempt stays counted, and a key whose attempts are used up
    starts its pause now (audited)."""
    _failed(request, _keys(request, username, user), user)


def _failed(request, keys, user):
    until = timezone.now() + datetime.timedelta(seconds=settings.THROTTLE_LOCKOUT)
    for key, limit in keys:
        if _run(_PAUSE, [connection.ops.adapt_datetimefield_value(until), key, limit]):
            AuditEvent.objects.record(
                Action.SIGNIN_LOCKED,
                request=request,
                target=user,
                target_label=_label(key, user),
                outcome=Outcome.DENIED,
                attempts=Throttle.objects.filter(key=key).values_list("failures", flat=True).first(),
                until=until.isoformat(),
            )


def attempt_succeeded(request, user):
    """The secret was right: give this attempt back to the account and the address. Failed
    attempts stay counted until the whole sign-in succeeds (clear_account), so a stolen password
    cannot be used to guess second-factor codes without limit."""
    # Row by row, each UPDATE a transaction of its own: holding no lock while asking for the
    # next, two sign-ins of one user cannot wait for each other.
    for key, _limit in _keys(request, user.username, user):
        _run(_GIVE_BACK, [key])


def clear_account(user):
    """A complete sign-in forgives the account's earlier failures (not the address's). The row
    stays, so that the next attempt is counted with one UPDATE; the daily purge removes it once
    its window has passed."""
    _run(_FORGIVE, [account_key(user.username, user)])


def address_paused(request):
    """True while the client's address is paused. Saying so reveals nothing about any account."""
    key = _address_key(request)
    return key is not None and Throttle.objects.filter(key=key, locked_until__gt=timezone.now()).exists()


# What a check answers for a right secret that may not be used again (a second-factor code used a
# moment ago): refused, but no guess, so it is given back instead of counted.
NOT_A_GUESS = "not a guess"


def checked(request, user, check, when_wrong=None):
    """Run `check()`, a password or code check for a known user, under the throttle: False
    without running it while the account or address is paused; else what it answered (True,
    False or NOT_A_GUESS). `when_wrong()`, if given, is called when the check ran and was wrong."""
    if not begin_attempt(request, user.username, user):
        return False
    outcome = check()
    if outcome:  # True, or NOT_A_GUESS
        attempt_succeeded(request, user)
        return outcome
    attempt_failed(request, user.username, user)
    if when_wrong is not None:
        when_wrong()
    return False


# Wrong codes after the right password tell that someone else probably knows it, and its person
# is told by email (accounts.flows.wrong_code). They are counted apart from wrong passwords, per
# account in THROTTLE_WINDOW, and as many as pause the account tell: a stranger's wrong passwords
# and the person's own slip of a code do not read as someone who knows the password. (Someone who
# does, and lets a wrong password start each pause, goes unnoticed with one code fewer a pause.)
WRONG_CODES = "codes:"


def wrong_code_noticed(user):
    """Count a wrong code after the right password for `user`; True from the
    THROTTLE_ACCOUNT_FAILURES-th within THROTTLE_WINDOW on."""
    window = datetime.timedelta(seconds=settings.THROTTLE_WINDOW)
    key = f"{WRONG_CODES}user:{user.pk}"
    return not _count(key, settings.THROTTLE_ACCOUNT_FAILURES - 1, timezone.now(), window)


# Whoever knows the password can go on guessing, a pause after another: told of the first time in
# a day, not of each. The count is a row here like any other (one statement, every process sees it).
WRONG_CODES_NOTICE = "notice:wrong-codes:"
WRONG_CODES_NOTICE_WINDOW = datetime.timedelta(days=1)


def may_tell_of_wrong_codes(user):
    """Count one notice of wrong codes to `user`; False, counting nothing, when one was sent in
    the last WRONG_CODES_NOTICE_WINDOW."""
    key = f"{WRONG_CODES_NOTICE}user:{user.pk}"
    return bool(_count(key, 1, timezone.now(), WRONG_CODES_NOTICE_WINDOW))


# Answers from Microsoft that the portal redeems (a code for a token, then the token's checks):
# each costs a call to Microsoft, and a made-up code fails only there. They are counted for the
# client's address as password attempts are, so that one client cannot keep the portal's calls to
# Microsoft busy for everybody; an answer that passes (or that Microsoft could not check) is given
# back.


def _address_only(request):
    key = _address_key(request)
    return [(key, settings.THROTTLE_ADDRESS_FAILURES)] if key else []


def begin_microsoft_answer(request):
    """Count one answer for the client's address; False, counting nothing, while it is paused."""
    keys = _address_only(request)
    return _begin(request, keys, None) if keys else True


def microsoft_answer_failed(request):
    _failed(request, _address_only(request), None)


def microsoft_answer_passed(request):
    for key, _limit in _address_only(request):
        _run(_GIVE_BACK, [key])


# Usernames are unique across companies, so "This username is taken" on the New user page tells a
# company's administrators that somebody, in some company or among the operator's staff, has that
# name: a list to guess passwords for. Each such answer counts for the company (not for one
# administrator, who could make others), and past TAKEN_NAMES of them in a day the page checks no
# more names for it (free ones neither, or their creation would tell). A free name is given back.
TAKEN_NAMES = 50
TAKEN_NAMES_WINDOW = datetime.timedelta(days=1)
TAKEN_NAMES_KEY = "taken-names:"


def _taken_names_key(company):
    return f"{TAKEN_NAMES_KEY}company:{company.pk}"


def may_look_up_name(company):
    """Count one look-up of a username for `company`; False, counting nothing, when used up."""
    return bool(_count(_taken_names_key(company), TAKEN_NAMES, timezone.now(), TAKEN_NAMES_WINDOW))


def name_was_free(company):
    _run(_GIVE_BACK, [_taken_names_key(company)])


# The counts kept for longer than THROTTLE_WINDOW, by how their keys start: the daily purge keeps
# each for its own window (gone earlier, the count would start again within it).
LONGER_WINDOWS = {WRONG_CODES_NOTICE: WRONG_CODES_NOTICE_WINDOW, TAKEN_NAMES_KEY: TAKEN_NAMES_WINDOW}
