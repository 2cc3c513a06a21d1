"""AADSTS errors in the three shapes Microsoft uses: a JSON body (token, discovery), query or
form parameters sent back to the app's redirect URI, and Microsoft's own error page.

Microsoft asks clients to branch on ``error`` and the numeric code, not on the text, but the
texts below follow Microsoft's wording so that logs look familiar.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote_plus

# The `\r\n`-separated trailer Microsoft appends to every error_description.
DESCRIPTION_TRAILER = "\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"


def format_timestamp(epoch: float) -> str:
    """``2016-01-09 02:02:12Z``, the format of ``timestamp`` in Microsoft's error JSON."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(epoch))


@dataclass
class Trace:
    """The identifiers Microsoft puts on every error. The correlation ID is the client's
    ``client-request-id`` header when it sent one (MSAL does), as on Microsoft's side."""

    trace_id: str
    correlation_id: str
    timestamp: str

    @classmethod
    def for_request(cls, request, now: float) -> Trace:
        sent = request.headers.get("client-request-id", "")
        try:
            correlation_id = str(uuid.UUID(sent))
        except ValueError:
            correlation_id = str(uuid.uuid4())
        return cls(str(uuid.uuid4()), correlation_id, format_timestamp(now))


class AadError(Exception):
    def __init__(self, error: str, code: int, message: str, status: int = 400, subcode: str | None = None):
        super().__init__(f"{error}: AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.subcode = subcode

    def description(self, trace: Trace) -> str:
        return f"AADSTS{self.code}: {self.message}" + DESCRIPTION_TRAILER.format(**vars(trace))

    def error_uri(self, base_url: str) -> str:
        return f"{base_url}/error?code={self.code}"

    def as_json(self, trace: Trace, base_url: str) -> dict:
        return {
            "error": self.error,
            "error_description": self.description(trace),
            "error_codes": [self.code],
            "timestamp": trace.timestamp,
            "trace_id": trace.trace_id,
            "correlation_id": trace.correlation_id,
            "error_uri": self.error_uri(base_url),
        }

    def as_params(self, trace: Trace, base_url: str) -> dict:
        params = {"error": self.error, "error_description": self.description(trace)}
        if self.subcode:
            params["error_subcode"] = self.subcode
        params["error_uri"] = self.error_uri(base_url)
        return params


def ms_urlencode(params: dict) -> str:
    """Form-encodes like Microsoft's servers (.NET): spaces as ``+`` and lower-case escapes
    (``%3a``, ``%0d%0a``), where Python's urlencode would write ``%3A``."""

    def quote(value) -> str:
        return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote_plus(str(value), safe=""))

    return "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())


# --- The catalogue. One function per situation, named for what happened. ---


def tenant_not_found(ref: str, error: str = "invalid_tenant") -> AadError:
    return AadError(
        error,
        90002,
        (
            f"Tenant '{ref}' not found. Check to make sure you have the correct tenant ID and are "
            "signing into the correct cloud. Check with your subscription administrator, this may "
            "happen if there are no active subscriptions for the tenant."
        ),
    )


def missing_parameter(name: str, error: str = "invalid_request") -> AadError:
    return AadError(error, 900144, f"The request body must contain the following parameter: '{name}'.")


def duplicated_parameter(name: str) -> AadError:
    return AadError(
        "invalid_request", 9000411, f"The request is not properly formatted. The parameter '{name}' is duplicated."
    )


def invalid_request(detail: str = "Invalid request. Request is malformed or invalid.") -> AadError:
    return AadError("invalid_request", 9002313, detail)


def unsupported_response_type(value: str) -> AadError:
    return AadError("unsupported_response_type", 700054, f"response_type '{value}' is not enabled for the application.")


def invalid_prompt(value: str) -> AadError:
    return AadError("invalid_request", 90023, f"Unsupported 'prompt' value '{value}'.")


def invalid_code_challenge_method(value: str) -> AadError:
    return AadError("invalid_request", 50149, "Invalid Code_Challenge_method parameter.")


def invalid_code_challenge_size() -> AadError:
    return AadError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")


def app_not_found(client_id: str, tenant_name: str) -> AadError:
    return AadError(
        "unauthorized_client",
        700016,
        (
            f"Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. "
            "This can happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant. You may have sent your authentication "
            "request to the wrong tenant."
        ),
    )


def redirect_uri_mismatch(redirect_uri: str, client_id: str) -> AadError:
    return AadError(
        "invalid_request",
        50011,
        (
            f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
            f"URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
            "the request matches one added to your application in the Azure portal. Navigate to "
            "https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
        ),
    )


def account_not_in_tenant(user_tid: str, tenant_name: str, client_id: str, app_name: str) -> AadError:
    # Microsoft no longer puts the account's address into this message; it writes {EmailHidden}.
    return AadError(
        "access_denied",
        50020,
        (
            f"User account '{{EmailHidden}}' from identity provider 'https://sts.windows.net/{user_tid}/' does "
            f"not exist in tenant '{tenant_name}' and cannot access the application '{client_id}'"
            f"({app_name}) in that tenant. The account needs to be added as an external user in the "
            "tenant first. Sign out and sign in again with a different Azure Active Directory user account."
        ),
    )


def user_disabled(error: str = "access_denied") -> AadError:
    return AadError(error, 50057, "The user account is disabled.")


def user_not_assigned(oid: str, client_id: str, app_name: str) -> AadError:
    return AadError(
        "access_denied",
        50105,
        (
            f"Your administrator has configured the application {app_name} ('{client_id}') to block "
            "users unless they are specifically granted ('assigned') access to the application. The "
            "signed in user '{EUII Hidden}' is blocked because they are not a direct member of a "
            "group with access, nor had access directly assigned by an administrator. Please contact "
            "your administrator to assign access to this application."
        ),
    )


def login_required() -> AadError:
    return AadError(
        "login_required",
        50058,
        (
            "A silent sign-in request was sent but no user is signed in. The cookies used to represent "
            "the user's session were not sent in the request to Azure AD."
        ),
    )


def account_selection_required() -> AadError:
    return AadError(
        "interaction_required",
        16000,
        (
            "SelectUserAccount - This is an interrupt thrown by Azure AD, which results in UI that "
            "allows the user to select from among multiple valid SSO sessions."
        ),
    )


def consent_required(client_id: str, app_name: str, error: str = "consent_required") -> AadError:
    return AadError(
        error,
        65001,
        (
            f"The user or administrator has not consented to use the application with ID '{client_id}' "
            f"named '{app_name}'. Send an interactive authorization request for this user and resource."
        ),
    )


def consent_declined(subcode: str | None = None) -> AadError:
    return AadError("access_denied", 65004, "User declined to consent to access the app.", subcode=subcode)


def unknown_resource(resource: str, tenant_name: str) -> AadError:
    return AadError(
        "invalid_resource",
        500011,
        (
            f"The resource principal named {resource} was not found in the tenant named {tenant_name}. "
            "This can happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant. You might have sent your authentication "
            "request to the wrong tenant."
        ),
    )


def mixed_default_scope(value: str) -> AadError:
    """/.default asks for everything the app registration names on a resource: Microsoft refuses
    it beside a named scope of the same resource."""
    return AadError(
        "invalid_scope",
        70011,
        f"The provided value for the input parameter 'scope' is not valid. The scope {value} is not valid. "
        "static scope limit exceeded.",
    )


def client_credentials_scope(scope: str) -> AadError:
    return AadError(
        "invalid_scope",
        1002012,
        (
            f"The provided value for scope {scope} is not valid. Client credential flows must have a "
            "scope value with /.default suffixed to the resource identifier (application ID URI)."
        ),
    )


def no_tenant_for_client_credentials() -> AadError:
    return AadError(
        "invalid_request",
        50059,
        ("No tenant-identifying information found in either the request or implied by any provided credentials."),
    )


def missing_client_secret() -> AadError:
    return AadError(
        "invalid_client",
        7000218,
        ("The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
        status=401,
    )


def invalid_client_secret(client_id: str) -> AadError:
    return AadError(
        "invalid_client",
        7000215,
        (
            "Invalid client secret provided. Ensure the secret being sent in the request is the client "
            f"secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
        status=401,
    )


def expired_client_secret(client_id: str) -> AadError:
    return AadError(
        "invalid_client",
        7000222,
        (
            f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal "
            "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
            "certificate credentials for added security: https://aka.ms/certCreds."
        ),
        status=401,
    )


def unsupported_grant_type(value: str) -> AadError:
    return AadError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{value}'.")


def malformed_grant() -> AadError:
    return AadError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")


def invalid_grant() -> AadError:
    return AadError("invalid_grant", 70000, "Provided grant is invalid or malformed.")


def code_redeemed() -> AadError:
    return AadError(
        "invalid_grant",
        54005,
        (
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use "
            "an existing refresh token."
        ),
    )


def code_expired() -> AadError:
    return AadError(
        "invalid_grant",
        70008,
        (
            "The provided authorization code or refresh token has expired due to inactivity. Send a new "
            "interactive authorization request for this user and resource."
        ),
    )


def reply_address_mismatch(sent: str, original: str) -> AadError:
    return AadError(
        "invalid_grant",
        500112,
        (
            f"The reply address '{sent}' does not match the reply address '{original}' provided when "
            "requesting Authorization code."
        ),
    )


def pkce_mismatch() -> AadError:
    return AadError(
        "invalid_grant",
        501481,
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    )


def service_unavailable(status: int) -> AadError:
    if status == 503:
        return AadError(
            "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.", status=503
        )
    return AadError(
        "server_error", 50000, "There was an error issuing a token or an issue with our sign-in service.", status=status
    )
