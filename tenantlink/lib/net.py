import ipaddress
import re

from django.conf import settings

# Proxies differ in what they write to X-Forwarded-For: some add the client's port
# ("203.0.113.9:51234", "[2001:db8::1]:443"), some write "unknown". A bare IPv6 address has at
# least two colons, so one colon after dotted digits can only be an IPv4 address with a port.
_WITH_PORT = re.compile(r"\[(?P<v6>[^\]]*)\](?::\d{1,5})?|(?P<v4>[\d.]+):\d{1,5}", re.ASCII)


def _address(value):
    """`value` as a canonical IP address string, or None when it is not one.

    The result is stored in the audit log (an inet column in PostgreSQL) and keys the sign-in
    throttle, so anything else must never get through: one bad header would otherwise turn
    every sign-in into a server error."""
    value = value.strip()
    match = _WITH_PORT.fullmatch(value)
    if match:
        value = match["v6"] if match["v6"] is not None else match["v4"]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):
        return None  # "fe80::1%eth0": a zone names an interface of some host, not a client
    # One canonical spelling per client, so that "::ffff:203.0.113.9" and "2001:DB8::1" share a
    # throttle count with "203.0.113.9" and "2001:db8::1".
    return str(getattr(address, "ipv4_mapped", None) or address)


def client_address(request):
    return client_address_in(request.META)


def client_address_in(environ):
    """The client's IP address, trusting X-Forwarded-For only as far as our own proxies.

    Each of our TRUSTED_PROXY_COUNT proxies appends the address it received the request from,
    so with N proxies the N-th entry from the right was written by our outermost proxy; anything
    further left came from the client and may be forged. Returns "" when no valid address is
    known."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            address = _address(forwarded[-hops])
            if address:
                return address
        # A missing or unreadable entry: the TCP peer (our innermost proxy) is still a real
        # address, and better than none for the audit log.
    return _address(environ.get("REMOTE_ADDR", "")) or ""


def printable(value, limit):
    """Text another party sent (a header, a claim, an error code), as it may be shown and stored:
    without control characters (PostgreSQL cannot even store a NUL), at most `limit` characters."""
    return "".join(character for character in str(value) if character.isprintable())[:limit]


def user_agent(request):
    return printable(request.META.get("HTTP_USER_AGENT", ""), 300)
