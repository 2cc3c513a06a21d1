"""The emulated directory: tenants with their users, app registrations, service principals and
consent grants.

Everything is loaded from (and serialised back to) plain JSON-shaped dicts, so the same shape
is used by the directory file, the control API and the tests. Updates go through ``to_dict`` →
merge → ``from_dict`` so that every change is validated by the same loader.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Scopes defined by OpenID Connect; Entra treats them as (delegated) Graph permissions too.
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# Aliases under which a tenant may be addressed without naming a tenant.
MULTI_TENANT_ALIASES = ("common", "organizations")
# Graph's application permissions (app roles) that the emulator knows, by their real IDs.
GRAPH_APP_ROLES = {"df021288-bdef-4463-88db-98f22de89214": "User.Read.All"}
GLOBAL_ADMINISTRATOR = "Global Administrator"
# Only these two roles may grant Graph application permissions; the others may grant the rest.
ADMIN_ROLES = (
    GLOBAL_ADMINISTRATOR,
    "Privileged Role Administrator",
    "Cloud Application Administrator",
    "Application Administrator",
)
GRAPH_APP_ROLE_GRANTORS = ADMIN_ROLES[:2]
DELETED_USER_RETENTION_DAYS = 30


class DirectoryError(ValueError):
    """A directory document (file or control API payload) that cannot be loaded."""


def _require(data: dict, key: str, kind: str):
    if not isinstance(data, dict):
        raise DirectoryError(f"each {kind} must be a JSON object")
    if key not in data or data[key] in (None, ""):
        raise DirectoryError(f"{kind} is missing {key!r}")
    return data[key]


def _text(data: dict, key: str, kind: str) -> str:
    value = _require(data, key, kind)
    if not isinstance(value, str):
        raise DirectoryError(f"{kind} {key!r} must be a string")
    return value


def _list(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DirectoryError(f"{what} must be a JSON array")
    return value


def _strings(value, what: str) -> list[str]:
    items = _list(value, what)
    if not all(isinstance(item, str) and item for item in items):
        raise DirectoryError(f"{what} must be an array of non-empty strings")
    return items


def _mapping(value, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DirectoryError(f"{what} must be a JSON object")
    return value


def _guid(value, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise DirectoryError(f"{what} {value!r} is not a GUID") from None


def _bool(data: dict, key: str, default: bool, kind: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise DirectoryError(f"{kind} {key!r} must be true or false")
    return value


def _datetime(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise DirectoryError(f"{what} {value!r} is not an ISO date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _graph_app_role(entry, what: str) -> str:
    """The name of a Graph app role from a manifest entry ``{"id": <role id>, "type": "Role"}``."""
    if not isinstance(entry, dict) or entry.get("type") != "Role":
        raise DirectoryError(
            f'{what} entries must be {{"id": <app role id>, "type": "Role"}}; delegated permissions go in required_scopes'
        )
    role = GRAPH_APP_ROLES.get(str(entry.get("id", "")).lower())
    if role is None:
        raise DirectoryError(f"{what}: {entry.get('id')!r} is not a Graph app role the emulator knows")
    return role


def _required_resource_access(value) -> list[dict]:
    """The manifest's ``requiredResourceAccess``, limited to Graph's application permissions."""
    entries = _list(value, "app required_resource_access")
    for entry in entries:
        resource = _require(entry, "resourceAppId", "required_resource_access entry")
        if str(resource).lower() != GRAPH_APP_ID:
            raise DirectoryError(f"required_resource_access: only Microsoft Graph ({GRAPH_APP_ID}) is emulated")
        for access in _list(entry.get("resourceAccess"), "resourceAccess"):
            _graph_app_role(access, "resourceAccess")
    return entries


def _known_app_role(name: str) -> str:
    if name not in GRAPH_APP_ROLES.values():
        raise DirectoryError(f"{name!r} is not a Graph app role the emulator knows")
    return name


def normalize_scope(scope: str) -> str:
    """Gives a scope its full resource-qualified form, as Entra does for Graph scopes:
    ``User.Read`` → ``https://graph.microsoft.com/User.Read``."""
    if scope in OIDC_SCOPES:
        return scope
    for prefix in (GRAPH_RESOURCE + "/", GRAPH_APP_ID + "/"):
        if scope.lower().startswith(prefix.lower()):
            return GRAPH_RESOURCE + "/" + scope[len(prefix) :]
    if "/" not in scope and ":" not in scope:
        return GRAPH_RESOURCE + "/" + scope
    return scope


def short_scope(scope: str) -> str:
    """The name a Graph access token carries in ``scp`` (``User.Read``)."""
    return scope[len(GRAPH_RESOURCE) + 1 :] if scope.startswith(GRAPH_RESOURCE + "/") else scope


def covers(granted, wanted) -> bool:
    granted_lower = {s.lower() for s in granted}
    return all(s.lower() in granted_lower for s in wanted)


@dataclass
class Secret:
    value: str
    expires: datetime

    @classmethod
    def from_dict(cls, data: dict) -> Secret:
        return cls(
            value=_text(data, "value", "secret"),
            expires=_datetime(_require(data, "expires", "secret"), "secret expiry"),
        )

    def to_dict(self) -> dict:
        return {"value": self.value, "expires": _iso(self.expires)}


@dataclass
class App:
    client_id: str
    display_name: str
    secrets: list[Secret] = field(default_factory=list)
    redirect_uris: list[str] = field(default_factory=list)
    required_scopes: list[str] = field(default_factory=list)
    # The manifest's requiredResourceAccess: the application permissions the app is configured with.
    required_resource_access: list[dict] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> App:
        return cls(
            client_id=_guid(_require(data, "client_id", "app"), "app client_id"),
            display_name=_text(data, "display_name", "app"),
            secrets=[Secret.from_dict(s) for s in _list(data.get("secrets"), "app secrets")],
            redirect_uris=_strings(data.get("redirect_uris"), "app redirect_uris"),
            required_scopes=_strings(data.get("required_scopes"), "app required_scopes"),
            required_resource_access=_required_resource_access(data.get("required_resource_access")),
        )

    def to_dict(self) -> dict:
        return {
            "client_id": self.client_id,
            "display_name": self.display_name,
            "secrets": [s.to_dict() for s in self.secrets],
            "redirect_uris": list(self.redirect_uris),
            "required_scopes": list(self.required_scopes),
            "required_resource_access": copy.deepcopy(self.required_resource_access),
        }

    @property
    def graph_app_roles(self) -> list[str]:
        """The Graph application permissions configured on the registration, by name."""
        entries = [a for r in self.required_resource_access for a in r.get("resourceAccess", [])]
        return list(dict.fromkeys(_graph_app_role(a, "resourceAccess") for a in entries))


@dataclass
class User:
    oid: str
    upn: str
    display_name: str
    password: str
    mail: str | None = None
    admin: bool = False
    enabled: bool = True
    admin_role: str | None = None  # for administrators: one of ADMIN_ROLES
    deleted: datetime | None = None  # when it was (soft-)deleted
    guest_idp: str | None = None  # a guest (B2B): the identity provider of their home, as `idp`

    @classmethod
    def from_dict(cls, data: dict) -> User:
        admin = _bool(data, "admin", False, "user")
        # Ignored for others, so that taking "admin" away is one change.
        admin_role = (data.get("admin_role") or GLOBAL_ADMINISTRATOR) if admin else None
        if admin and admin_role not in ADMIN_ROLES:
            raise DirectoryError(f"user 'admin_role' must be one of: {', '.join(ADMIN_ROLES)}")
        return cls(
            oid=_guid(_require(data, "oid", "user"), "user oid"),
            upn=_text(data, "upn", "user"),
            display_name=_text(data, "display_name", "user"),
            password=_text(data, "password", "user"),
            mail=_text(data, "mail", "user") if data.get("mail") else None,
            admin=admin,
            enabled=_bool(data, "enabled", True, "user"),
            admin_role=admin_role,
            deleted=_datetime(data["deleted"], "user deleted") if data.get("deleted") else None,
            guest_idp=_text(data, "guest_idp", "user") if data.get("guest_idp") else None,
        )

    def to_dict(self) -> dict:
        return {
            "oid": self.oid,
            "upn": self.upn,
            "display_name": self.display_name,
            "mail": self.mail,
            "password": self.password,
            "admin": self.admin,
            "admin_role": self.admin_role,
            "enabled": self.enabled,
            **({"deleted": _iso(self.deleted)} if self.deleted else {}),
            **({"guest_idp": self.guest_idp} if self.guest_idp else {}),
        }

    @property
    def may_grant_graph_app_roles(self) -> bool:
        return self.admin_role in GRAPH_APP_ROLE_GRANTORS

    @property
    def given_name(self) -> str:
        return self.display_name.split(" ")[0]

    @property
    def surname(self) -> str | None:
        parts = self.display_name.split(" ", 1)
        return parts[1] if len(parts) > 1 else None


def _user_by_ref(users: list[User], ref: str) -> User | None:
    ref = (ref or "").lower()
    return next((u for u in users if ref in (u.oid, u.upn.lower())), None)


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str
    user_consent_allowed: bool = True
    assignment_required: bool = False
    users: list[User] = field(default_factory=list)
    # Client IDs of apps that have a service principal ("enterprise application") here.
    service_principals: list[str] = field(default_factory=list)
    assignments: dict[str, list[str]] = field(default_factory=dict)
    # Tenant-wide delegated grants made by an administrator: client_id → scopes.
    admin_consents: dict[str, list[str]] = field(default_factory=dict)
    # Grants users made for themselves: client_id → {oid → scopes}.
    user_consents: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    # Application permissions granted to an app's service principal: client_id → Graph app roles.
    app_role_assignments: dict[str, list[str]] = field(default_factory=dict)
    # Soft-deleted users ("Deleted users"), restorable for DELETED_USER_RETENTION_DAYS.
    deleted_users: list[User] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> Tenant:
        tenant = cls(
            id=_guid(_require(data, "id", "tenant"), "tenant id"),
            domain=_text(data, "domain", "tenant").lower(),
            display_name=_text(data, "display_name", "tenant"),
            user_consent_allowed=_bool(data, "user_consent_allowed", True, "tenant"),
            assignment_required=_bool(data, "assignment_required", False, "tenant"),
            users=[User.from_dict(u) for u in _list(data.get("users"), "tenant users")],
            service_principals=[
                _guid(c, "service principal") for c in _list(data.get("service_principals"), "service_principals")
            ],
            assignments={
                _guid(c, "assignment app"): [_guid(o, "assigned oid") for o in _list(oids, "assigned oids")]
                for c, oids in _mapping(data.get("assignments"), "assignments").items()
            },
            admin_consents={
                _guid(c, "consented app"): [normalize_scope(s) for s in _strings(scopes, "admin_consents scopes")]
                for c, scopes in _mapping(data.get("admin_consents"), "admin_consents").items()
            },
            user_consents={
                _guid(c, "consented app"): {
                    _guid(o, "consenting oid"): [normalize_scope(s) for s in _strings(scopes, "user_consents scopes")]
                    for o, scopes in _mapping(by_user, "user_consents of an app").items()
                }
                for c, by_user in _mapping(data.get("user_consents"), "user_consents").items()
            },
            app_role_assignments={
                _guid(c, "app with app roles"): [
                    _known_app_role(r) for r in _strings(roles, "app_role_assignments roles")
                ]
                for c, roles in _mapping(data.get("app_role_assignments"), "app_role_assignments").items()
            },
            deleted_users=[User.from_dict(u) for u in _list(data.get("deleted_users"), "tenant deleted_users")],
        )
        if any(u.deleted for u in tenant.users) or not all(u.deleted for u in tenant.deleted_users):
            raise DirectoryError(f"tenant {tenant.domain}: only deleted_users carry 'deleted'")
        oids = [u.oid for u in tenant.users + tenant.deleted_users]
        if len(set(oids)) != len(oids):
            raise DirectoryError(f"tenant {tenant.domain} has two users with the same oid")
        return tenant

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "domain": self.domain,
            "display_name": self.display_name,
            "user_consent_allowed": self.user_consent_allowed,
            "assignment_required": self.assignment_required,
            "users": [u.to_dict() for u in self.users],
            "service_principals": list(self.service_principals),
            "assignments": {c: list(o) for c, o in self.assignments.items()},
            "admin_consents": {c: list(s) for c, s in self.admin_consents.items()},
            "user_consents": {c: {o: list(s) for o, s in by_user.items()} for c, by_user in self.user_consents.items()},
            "app_role_assignments": {c: list(r) for c, r in self.app_role_assignments.items()},
            "deleted_users": [u.to_dict() for u in self.deleted_users],
        }

    def find_user(self, ref: str) -> User | None:
        """A user by object ID or by user principal name (case-insensitive)."""
        return _user_by_ref(self.users, ref)

    def granted_scopes(self, client_id: str, oid: str) -> list[str]:
        return self.admin_consents.get(client_id, []) + self.user_consents.get(client_id, {}).get(oid, [])

    def has_consent(self, client_id: str, oid: str, scopes) -> bool:
        return client_id in self.service_principals and covers(self.granted_scopes(client_id, oid), scopes)

    def delete_user(self, user: User, now: datetime) -> None:
        """Microsoft's delete: the user moves to "Deleted users" and can no longer sign in."""
        self.users.remove(user)
        user.deleted = now
        self.deleted_users.append(user)

    def purge_deleted_users(self, now: datetime) -> None:
        """Deleted users are gone for good after the retention period."""
        cutoff = now - timedelta(days=DELETED_USER_RETENTION_DAYS)
        self.deleted_users = [u for u in self.deleted_users if u.deleted > cutoff]

    def find_deleted_user(self, ref: str) -> User | None:
        return _user_by_ref(self.deleted_users, ref)

    def is_assigned(self, client_id: str, oid: str) -> bool:
        return not self.assignment_required or oid in self.assignments.get(client_id, [])

    def _add_service_principal(self, client_id: str) -> None:
        if client_id not in self.service_principals:
            self.service_principals.append(client_id)

    def grant_admin_consent(self, client_id: str, scopes, app_roles=()) -> None:
        """What "Grant admin consent" / the admin consent endpoint does: creates the app's
        service principal here, a tenant-wide grant, and assigns it the application permissions."""
        self._add_service_principal(client_id)
        granted = self.admin_consents.setdefault(client_id, [])
        granted.extend(s for s in scopes if not covers(granted, [s]))
        if app_roles:
            assigned = self.app_role_assignments.setdefault(client_id, [])
            assigned.extend(r for r in app_roles if r not in assigned)

    def grant_user_consent(self, client_id: str, oid: str, scopes) -> None:
        self._add_service_principal(client_id)
        granted = self.user_consents.setdefault(client_id, {}).setdefault(oid, [])
        granted.extend(s for s in scopes if not covers(granted, [s]))

    def remove_service_principal(self, client_id: str) -> bool:
        """Deleting the enterprise application also removes every grant made to it."""
        self.admin_consents.pop(client_id, None)
        self.user_consents.pop(client_id, None)
        self.app_role_assignments.pop(client_id, None)
        if client_id in self.service_principals:
            self.service_principals.remove(client_id)
            return True
        return False


@dataclass
class Directory:
    tenants: list[Tenant] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict) -> Directory:
        if not isinstance(data, dict):
            raise DirectoryError("a directory must be a JSON object with 'tenants' and 'apps'")
        directory = cls(
            tenants=[Tenant.from_dict(t) for t in _list(data.get("tenants"), "'tenants'")],
            apps=[App.from_dict(a) for a in _list(data.get("apps"), "'apps'")],
        )
        for kind, keys in (
            ("tenant id", [t.id for t in directory.tenants]),
            ("tenant domain", [t.domain for t in directory.tenants]),
            ("app client_id", [a.client_id for a in directory.apps]),
            ("user principal name", [u.upn.lower() for t in directory.tenants for u in t.users]),
        ):
            if len(set(keys)) != len(keys):
                raise DirectoryError(f"the directory holds the same {kind} twice")
        return directory

    def to_dict(self) -> dict:
        return {"tenants": [t.to_dict() for t in self.tenants], "apps": [a.to_dict() for a in self.apps]}

    def find_tenant(self, ref: str) -> Tenant | None:
        """A tenant by GUID or by one of its domains, the ways Microsoft accepts in URLs: from an
        index of the current tenant list (every request asks, and a directory may hold thousands
        of tenants), confirmed against the tenant itself."""
        ref = (ref or "").lower()
        tenant = self._tenant_index().get(ref)
        if tenant is not None and ref in (tenant.id, tenant.domain):
            return tenant
        return next((t for t in self.tenants if ref in (t.id, t.domain)), None)

    def _tenant_index(self) -> dict:
        # Built again when the list is replaced (updates replace it) or grows or shrinks; the
        # cache holds the list itself, so that a new list cannot pass for it.
        cached = self.__dict__.get("_index")
        if cached is None or cached[0] is not self.tenants or cached[1] != len(self.tenants):
            index = {}
            for tenant in self.tenants:  # the first of equal names wins, as in a scan
                index.setdefault(tenant.id, tenant)
                index.setdefault(tenant.domain, tenant)
            cached = self.__dict__["_index"] = (self.tenants, len(self.tenants), index)
        return cached[2]

    def find_app(self, client_id: str) -> App | None:
        client_id = (client_id or "").lower()
        return next((a for a in self.apps if a.client_id == client_id), None)

    def find_account(self, upn: str) -> tuple[Tenant, User] | tuple[None, None]:
        for tenant in self.tenants:
            user = tenant.find_user(upn)
            if user and user.upn.lower() == (upn or "").lower():
                return tenant, user
        return None, None

    def find_user(self, tid: str, oid: str) -> User | None:
        tenant = self.find_tenant(tid)
        return tenant.find_user(oid) if tenant else None

    # Updates used by the control API: each builds the new object from the merged dict so the
    # loader's validation applies, and refuses to leave the directory inconsistent.

    def upsert_tenant(self, data: dict) -> Tenant:
        tenant = Tenant.from_dict(data)
        self._replace_all(tenants=[t for t in self.tenants if t.id != tenant.id] + [tenant])
        return self.find_tenant(tenant.id)

    def update_tenant(self, tenant: Tenant, changes: dict) -> Tenant:
        merged = {**tenant.to_dict(), **changes, "id": tenant.id}
        new = Tenant.from_dict(merged)
        self._replace_all(tenants=[new if t is tenant else t for t in self.tenants])
        return self.find_tenant(new.id)

    def upsert_user(self, tenant: Tenant, data: dict) -> User:
        user = User.from_dict(data)
        users = [u.to_dict() for u in tenant.users if u.oid != user.oid] + [user.to_dict()]
        return self.update_tenant(tenant, {"users": users}).find_user(user.oid)

    def update_user(self, tenant: Tenant, user: User, changes: dict) -> User:
        merged = {**user.to_dict(), **changes, "oid": user.oid}
        users = [merged if u is user else u.to_dict() for u in tenant.users]
        return self.update_tenant(tenant, {"users": users}).find_user(user.oid)

    def restore_user(self, tenant: Tenant, user: User) -> User:
        """Back from "Deleted users", refused while an active user holds its name."""
        users = [u.to_dict() for u in tenant.users] + [{**user.to_dict(), "deleted": None}]
        deleted = [u.to_dict() for u in tenant.deleted_users if u is not user]
        return self.update_tenant(tenant, {"users": users, "deleted_users": deleted}).find_user(user.oid)

    def upsert_app(self, data: dict) -> App:
        app = App.from_dict(data)
        self._replace_all(apps=[a for a in self.apps if a.client_id != app.client_id] + [app])
        return self.find_app(app.client_id)

    def update_app(self, app: App, changes: dict) -> App:
        new = App.from_dict({**app.to_dict(), **changes, "client_id": app.client_id})
        self._replace_all(apps=[new if a is app else a for a in self.apps])
        return self.find_app(new.client_id)

    def _replace_all(self, tenants=None, apps=None) -> None:
        candidate = Directory(
            tenants=self.tenants if tenants is None else tenants, apps=self.apps if apps is None else apps
        )
        checked = Directory.from_dict(candidate.to_dict())  # raises on duplicates
        self.tenants, self.apps = checked.tenants, checked.apps
