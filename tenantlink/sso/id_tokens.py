"""Checking an ID token from Microsoft, every check a relying party owes (DESIGN's identity rules).
The keys it is checked with come through tenantlink.sso.microsoft, which fetches and caches them;
nothing here speaks HTTP."""

import logging
import math

import jwt
from django.conf import settings
from django.utils.crypto import constant_time_compare

from tenantlink.lib import net
from tenantlink.sso import microsoft
from tenantlink.sso.microsoft import MicrosoftError

log = logging.getLogger(__name__)

LEEWAY = 60  # seconds of clock difference allowed for exp, nbf and iat
LONGEST_LIFE = 24 * 3600  # Microsoft's: an hour, at most a day by a token lifetime policy


def validate(id_token, nonce):
    """The claims of an ID token that passes every check, else MicrosoftError: "bad_token", or
    "new_key" for a key not fetched yet (and "bad_answer" or "unavailable" when the keys cannot be
    had or used):
    signed RS256 by a key Microsoft publishes for the token's tenant (by `kid`, from the tenant's
    keys), whose own `issuer`, where the key names one, is the token's; `iss` exactly
    {authority}/{tid}/v2.0 for the token's own `tid`; `aud` exactly our client ID (a string, not a list holding it);
    `exp`, `nbf` and `iat` numbers, with a minute's leeway, `exp` at most a day after `iat`; our
    `nonce`; `tid` and `oid` GUIDs. Only (tid, oid) may ever identify anyone. A refused token is
    logged with the check it failed."""
    try:
        return _checked_claims(id_token, nonce)
    except MicrosoftError as error:
        if error.reason in ("bad_token", "new_key"):  # Microsoft not answering is logged where it is asked
            log.warning("An ID token from Microsoft was refused: %s", error)
        raise


def _checked_claims(id_token, nonce):
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise MicrosoftError("bad_token", "malformed") from None
    if header.get("alg") != "RS256":  # never "none", never HS256 keyed with something public
        raise MicrosoftError("bad_token", f"alg {str(header.get('alg'))[:20]}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise MicrosoftError("bad_token", "no kid")
    try:  # which tenant's keys to check it with: the payload verified below is this same one
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise MicrosoftError("bad_token", "malformed") from None
    tid = unverified.get("tid")
    if not (isinstance(tid, str) and microsoft.GUID.match(tid)):
        raise MicrosoftError("bad_token", "tid/oid")
    if unverified.get("iss") != microsoft.issuer(tid):  # nothing fetched for it
        raise MicrosoftError("bad_token", "iss")
    try:
        published = microsoft.signing_key(kid, tid)
    except MicrosoftError as error:
        if error.reason == "unknown_tenant":  # Microsoft knows no such tenant: not a token of its
            raise MicrosoftError("bad_token", "unknown tid") from None
        raise
    try:
        key = jwt.PyJWK(published, algorithm="RS256").key
    except jwt.PyJWTError:
        log.warning("Microsoft published a key that cannot be used: %s", net.printable(kid, 40))
        raise MicrosoftError("bad_answer", "unusable key") from None
    try:
        claims = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=settings.ENTRA_CLIENT_ID,
            leeway=LEEWAY,
            options={
                "require": ["iss", "aud", "exp", "iat", "nbf", "sub", "tid", "oid", "nonce"],
                "strict_aud": True,
                # Shorter than 2048 bits (Microsoft's), which can be broken: refused, not a warning.
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidKeyError:
        log.warning("Microsoft published a key shorter than 2048 bits: %s", net.printable(kid, 40))
        raise MicrosoftError("bad_answer", "weak key") from None
    except jwt.PyJWTError as error:
        raise MicrosoftError("bad_token", error.__class__.__name__) from None
    times = [claims["iat"], claims["nbf"], claims["exp"]]
    # PyJWT reads "123" and 10**400 as times too; Microsoft's are numbers, an hour or so apart.
    numbers = all((type(t) is int) or (type(t) is float and math.isfinite(t)) for t in times)
    if not numbers or claims["exp"] - claims["iat"] > LONGEST_LIFE:
        raise MicrosoftError("bad_token", "times")
    oid = claims["oid"]  # tid and iss: checked above, in the payload now verified
    if not (isinstance(oid, str) and microsoft.GUID.match(oid)):
        raise MicrosoftError("bad_token", "tid/oid")
    # A key may say whose tokens it signs (its `issuer`, a template of {tenantid}): only those.
    if "issuer" in published:
        key_issuer = published["issuer"]
        if not isinstance(key_issuer, str) or key_issuer.replace("{tenantid}", tid) != claims["iss"]:
            raise MicrosoftError("bad_token", "key issuer")
    if not isinstance(claims["nonce"], str) or not constant_time_compare(claims["nonce"], nonce):
        raise MicrosoftError("bad_token", "nonce")
    return claims
