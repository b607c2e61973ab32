"""The identities file: the example is usable as shipped, and every kind of mistake is named clearly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.identities import MSA_TENANT_ID, IdentitiesError, load_identities
from tests.sandbox_entra.conftest import EXAMPLE_IDENTITIES


def _example() -> dict[str, Any]:
    return json.loads(EXAMPLE_IDENTITIES.read_text())


def _write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps(document))
    return path


def test_example_has_what_the_landing_page_scenarios_need() -> None:
    identities = load_identities(EXAMPLE_IDENTITIES)

    assert {t.display_name for t in identities.tenants} == {"Contoso", "Fabrikam", "Northwind Partners"}
    assert any(u.mail is None for u in identities.users)
    personal = [u for u in identities.users if u.account_kind == "personal"]
    assert personal
    assert all(u.tenant_id == MSA_TENANT_ID for u in personal)
    for tenant in identities.tenants:
        buyers = [u for u in identities.users if u.tenant_id == tenant.tenant_id and not u.app_roles]
        assert 2 <= len(buyers) <= 3
    staff = {
        u.display_name: u.app_roles for u in identities.users if u.tenant_id == identities.publisher.tenant_id
    }
    assert staff == {"Olivia Operator": ("Publisher.Admin",), "Ravi Reader": ("Publisher.Reader",)}
    [sso] = identities.sso_apps
    assert "http://127.0.0.1:7071/api/auth/callback" in sso.redirect_uris
    assert "http://localhost:7071/api/auth/callback" in sso.redirect_uris
    assert identities.publisher.tenant_id not in {t.tenant_id for t in identities.tenants}


def test_service_principal_id_is_stable_and_distinct_from_the_client_id() -> None:
    publisher = load_identities(EXAMPLE_IDENTITIES).publisher

    assert (
        publisher.service_principal_id == load_identities(EXAMPLE_IDENTITIES).publisher.service_principal_id
    )
    assert publisher.service_principal_id != publisher.client_id


def _break(document: dict[str, Any], change: str) -> None:
    users, apps = document["users"], document["sso_apps"]
    if change == "no publisher":
        del document["publisher"]
    elif change == "publisher not an object":
        document["publisher"] = "aaaa"
    elif change == "client id not a GUID":
        document["publisher"]["client_id"] = "my-app"
    elif change == "empty secret":
        document["publisher"]["client_secret"] = " "
    elif change == "users not a list":
        document["users"] = {}
    elif change == "unknown account kind":
        users[0]["account_kind"] = "guest"
    elif change == "personal outside the MSA tenant":
        next(u for u in users if u["account_kind"] == "personal")["tenant_id"] = users[0]["tenant_id"]
    elif change == "app roles not a list":
        users[0]["app_roles"] = "Publisher.Admin"
    elif change == "work user of an unlisted tenant":
        users[0]["tenant_id"] = "44444444-0000-4000-8000-000000000000"
    elif change == "duplicate object id":
        users[1]["object_id"] = users[0]["object_id"]
    elif change == "mail not an address":
        users[0]["mail"] = "nobody"
    elif change == "mail domain verified not a flag":
        users[0]["mail_domain_verified"] = "yes"
    elif change == "relative redirect URI":
        apps[0]["redirect_uris"] = ["/api/auth/callback"]
    elif change == "redirect URI with #":
        apps[0]["redirect_uris"] = ["http://localhost:7071/#/callback"]
    elif change == "no redirect URIs":
        apps[0]["redirect_uris"] = []


BREAKAGES = {
    "no publisher": "lacks 'publisher'",
    "publisher not an object": "publisher must be a JSON object",
    "client id not a GUID": "publisher.client_id must be a GUID, not 'my-app'",
    "empty secret": "publisher.client_secret must be a non-empty string",
    "users not a list": "users must be a list",
    "unknown account kind": "users[0].account_kind must be one of ['work', 'personal']",
    "personal outside the MSA tenant": f"personal accounts live in tenant {MSA_TENANT_ID}",
    "app roles not a list": "users[0].app_roles must be a list of role names",
    "work user of an unlisted tenant": "tenant 44444444-0000-4000-8000-000000000000 is not listed",
    "duplicate object id": "users[].object_id must be unique",
    "mail not an address": "users[0].mail must be an e-mail address or null",
    "mail domain verified not a flag": "users[0].mail_domain_verified must be true or false",
    "relative redirect URI": "'/api/auth/callback' is not an absolute http(s) URL",
    "redirect URI with #": "is not an absolute http(s) URL without #",
    "no redirect URIs": "sso_apps[0].redirect_uris must be a non-empty list",
}


@pytest.mark.parametrize(("change", "message"), BREAKAGES.items(), ids=list(BREAKAGES))
def test_a_malformed_file_names_the_file_and_the_entry(tmp_path: Path, change: str, message: str) -> None:
    document = copy.deepcopy(_example())
    _break(document, change)
    path = _write(tmp_path, document)

    with pytest.raises(IdentitiesError) as caught:
        load_identities(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "identities.json"
    path.write_text('{\n  "publisher": {,\n}')

    with pytest.raises(IdentitiesError, match=r"not valid JSON: .* at line 2"):
        load_identities(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IdentitiesError, match="cannot read the identities file"):
        load_identities(tmp_path / "absent.json")


def test_secrets_are_not_part_of_error_messages(tmp_path: Path) -> None:
    document = _example()
    document["sso_apps"][0]["client_id"] = "not-a-guid"
    path = _write(tmp_path, document)

    with pytest.raises(IdentitiesError) as caught:
        load_identities(path)

    assert document["sso_apps"][0]["client_secret"] not in str(caught.value)
