"""Who exists in the sandbox's Entra ID: the publisher's app, the SSO app, customer tenants and test users.

The file format is JSON (see identities.example.json). `load_identities` checks it completely at start-up so
that a typo fails `make dev` with a message naming the field, instead of a puzzling sign-in later.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

# Personal Microsoft accounts (MSA) all live in this one tenant; Entra puts it in `tid` of their tokens.
MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

AccountKind = Literal["work", "personal"]
ACCOUNT_KINDS: tuple[AccountKind, ...] = ("work", "personal")

# Service principal ids are derived, not configured: one less thing to keep consistent in the file.
_SERVICE_PRINCIPAL_NAMESPACE = uuid.UUID("6f1d54d2-55a4-4a43-9d3c-5bd0c1d2e0a1")


class IdentitiesError(ValueError):
    """The identities file cannot be used; the message names the file and the offending entry."""


@dataclass(frozen=True)
class TestUser:
    """A person who can sign in on the sandbox's sign-in page."""

    __test__ = False  # the name starts with "Test"; pytest must not collect it from test modules

    object_id: str
    tenant_id: str
    username: str  # the UPN, e.g. adele@contoso.onmicrosoft.com
    display_name: str
    mail: str | None  # None like Graph for users without a mailbox (R11)
    account_kind: AccountKind
    # Whether Entra has verified the owner of `mail`'s domain: the ID token's `xms_edov` claim. Optional in
    # the file (default true); false plays a mail attribute on a domain the tenant never verified.
    mail_domain_verified: bool = True
    # App roles assigned to this user on the sign-in app, in the user's own tenant: the ID token's `roles`.
    # Optional (default none). Staff of the publisher's tenant get Publisher.Admin / Publisher.Reader; a
    # customer tenant can assign the same names to its users, which the app must ignore.
    app_roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    display_name: str


@dataclass(frozen=True)
class PublisherApp:
    """The single-tenant app registration entered in Partner Center (R43-R45)."""

    tenant_id: str
    client_id: str
    client_secret: str

    @property
    def service_principal_id(self) -> str:
        """The object id of the app's service principal in its own tenant: `oid`/`sub` of its tokens (R45)."""
        return str(uuid.uuid5(_SERVICE_PRINCIPAL_NAMESPACE, f"{self.tenant_id}/{self.client_id}"))


@dataclass(frozen=True)
class SsoApp:
    """The multitenant app the landing page signs buyers in with (R8, R17)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Identities:
    publisher: PublisherApp
    sso_apps: list[SsoApp]
    tenants: list[Tenant]
    users: list[TestUser]

    def sso_app(self, client_id: str) -> SsoApp | None:
        return next((app for app in self.sso_apps if app.client_id == client_id), None)

    def user(self, object_id: str) -> TestUser | None:
        return next((user for user in self.users if user.object_id == object_id), None)

    def tenant(self, tenant_id: str) -> Tenant | None:
        return next((tenant for tenant in self.tenants if tenant.tenant_id == tenant_id), None)

    def known_tenant_ids(self) -> set[str]:
        """Tenants Entra would answer for: customers', the publisher's and the MSA tenant."""
        return {t.tenant_id for t in self.tenants} | {self.publisher.tenant_id, MSA_TENANT_ID}


def load_identities(path: Path | str) -> Identities:
    """Reads and checks an identities file; raises IdentitiesError naming the file and the bad entry."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdentitiesError(f"{path}: cannot read the identities file: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise IdentitiesError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    try:
        identities = parse_identities(document)
    except IdentitiesError as exc:
        raise IdentitiesError(f"{path}: {exc}") from exc
    return identities


def parse_identities(document: Any) -> Identities:
    """Builds Identities from the decoded JSON document (the same checks as load_identities)."""
    root = _mapping(document, "the document")
    identities = Identities(
        publisher=_publisher(_mapping(_field(root, "publisher", "the document"), "publisher")),
        sso_apps=_items(root, "sso_apps", _sso_app),
        tenants=_items(root, "tenants", _tenant),
        users=_items(root, "users", _user),
    )
    _check_consistency(identities)
    return identities


T = TypeVar("T")


def _items(root: Mapping[str, Any], key: str, build: Callable[[Mapping[str, Any], str], T]) -> list[T]:
    entries = _field(root, key, "the document")
    if not isinstance(entries, list):
        raise IdentitiesError(f"{key} must be a list")
    return [build(_mapping(entry, f"{key}[{i}]"), f"{key}[{i}]") for i, entry in enumerate(entries)]


def _publisher(entry: Mapping[str, Any]) -> PublisherApp:
    where = "publisher"
    return PublisherApp(
        tenant_id=_guid(entry, "tenant_id", where),
        client_id=_guid(entry, "client_id", where),
        client_secret=_text(entry, "client_secret", where),
    )


def _sso_app(entry: Mapping[str, Any], where: str) -> SsoApp:
    uris = _field(entry, "redirect_uris", where)
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise IdentitiesError(f"{where}.redirect_uris must be a non-empty list of URLs")
    for uri in uris:
        if not uri.startswith(("http://", "https://")) or "#" in uri:
            raise IdentitiesError(f"{where}.redirect_uris: {uri!r} is not an absolute http(s) URL without #")
    return SsoApp(
        client_id=_guid(entry, "client_id", where),
        client_secret=_text(entry, "client_secret", where),
        redirect_uris=list(uris),
    )


def _tenant(entry: Mapping[str, Any], where: str) -> Tenant:
    return Tenant(
        tenant_id=_guid(entry, "tenant_id", where), display_name=_text(entry, "display_name", where)
    )


def _user(entry: Mapping[str, Any], where: str) -> TestUser:
    kind = _field(entry, "account_kind", where)
    if kind not in ACCOUNT_KINDS:
        raise IdentitiesError(f"{where}.account_kind must be one of {list(ACCOUNT_KINDS)}, not {kind!r}")
    mail = _field(entry, "mail", where)
    if mail is not None and (not isinstance(mail, str) or "@" not in mail):
        raise IdentitiesError(f"{where}.mail must be an e-mail address or null")
    verified = entry.get("mail_domain_verified", True)
    if not isinstance(verified, bool):
        raise IdentitiesError(f"{where}.mail_domain_verified must be true or false")
    roles = entry.get("app_roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) and role for role in roles):
        raise IdentitiesError(f"{where}.app_roles must be a list of role names")
    return TestUser(
        app_roles=tuple(roles),
        object_id=_guid(entry, "object_id", where),
        tenant_id=_guid(entry, "tenant_id", where),
        username=_text(entry, "username", where),
        display_name=_text(entry, "display_name", where),
        mail=mail,
        account_kind=cast(AccountKind, kind),
        mail_domain_verified=verified,
    )


def _check_consistency(identities: Identities) -> None:
    customer_tenants = {t.tenant_id for t in identities.tenants}
    for user in identities.users:
        if user.account_kind == "personal" and user.tenant_id != MSA_TENANT_ID:
            raise IdentitiesError(f"user {user.username}: personal accounts live in tenant {MSA_TENANT_ID}")
        # Work accounts live in a customer's tenant, or in the publisher's own (its staff: the console).
        own = user.tenant_id == identities.publisher.tenant_id
        if user.account_kind == "work" and user.tenant_id not in customer_tenants and not own:
            raise IdentitiesError(f"user {user.username}: tenant {user.tenant_id} is not listed in tenants")
    _check_unique([u.object_id for u in identities.users], "users[].object_id")
    _check_unique([t.tenant_id for t in identities.tenants], "tenants[].tenant_id")
    _check_unique([a.client_id for a in identities.sso_apps], "sso_apps[].client_id")


def _check_unique(values: list[str], what: str) -> None:
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise IdentitiesError(f"{what} must be unique; repeated: {', '.join(duplicates)}")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise IdentitiesError(f"{where} must be a JSON object")
    return value


def _field(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry:
        raise IdentitiesError(f"{where} lacks {key!r}")
    return entry[key]


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = _field(entry, key, where)
    if not isinstance(value, str) or not value.strip():
        raise IdentitiesError(f"{where}.{key} must be a non-empty string")
    return value


def _guid(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(entry, key, where)
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise IdentitiesError(f"{where}.{key} must be a GUID, not {value!r}") from None
