"""The one Jinja2 environment that renders every page, built lazily on first use.

Autoescaping is on for HTML and undefined names raise (StrictUndefined), so a typo in a template or a missing
value fails loudly in tests instead of rendering an empty string or, worse, unescaped buyer input.

Text a buyer or user controls (names, subscription names, addresses) goes through `bdi` in element content
and `isolate` where no markup is allowed (`<option>`, `<title>`): both isolate it for bidirectional text, so a
right-to-left override (U+202E) inside one name cannot reorder what follows it, and cannot make one user
look like another in a pick list. Inputs that show such text carry `dir="auto"`.

API values (statuses, billing terms, roles, operation actions and outcomes) are never shown as they are: the
filters of `shared.domain.wording` turn them into buyer words, and the raw value stays in a `data-*`
attribute. `plan_label` shows a plan by its display name, or its bare id marked `class="id"` when the page
has no name for it.

Every page extends `base.html`, which needs `csp_nonce` (the nonce of the response's Content-Security-Policy,
see `shared.web.security`). `render` fills the layout's optional slots (`product_name`, `support_url`,
`docs_url`, `user`) with defaults so a page only passes what it knows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from shared.config import page_links
from shared.domain import wording
from shared.domain.identity import is_personal_tenant

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"

# Slots of base.html that a page may leave out. `user` is None when nobody is signed in, else a mapping
# with `name` and `email`.
# `render` lays the publisher's settings (`shared.config.page_links`) over these.
LAYOUT_DEFAULTS: dict[str, Any] = {
    "product_name": "SaaS subscription",
    "support_url": "",
    "docs_url": "",
    "user": None,
}

# FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE: the plain-text twin of <bdi>. The PDI also ends any
# embedding or override left open inside, which is what an unterminated U+202E in a name would be.
_FSI = "\u2068"
_PDI = "\u2069"

_environment: Environment | None = None
_lock = threading.Lock()


def bdi(value: object) -> Markup:
    """`<bdi>value</bdi>`, the value escaped: for user-controlled text in element content."""
    return Markup("<bdi>{}</bdi>").format(value)


def isolate(value: object) -> str:
    """The value between FSI and PDI: for user-controlled text where no element may go (option, title)."""
    return f"{_FSI}{value}{_PDI}"


def plan_label(plan_id: object, names: Mapping[str, str] | None = None) -> Markup:
    """The plan's display name, or its id set apart as an id; `data-plan` keeps the id either way."""
    name = wording.display_name(plan_id, names)
    if name is not None:
        return Markup('<span data-plan="{}">{}</span>').format(plan_id, name)
    return Markup('<span class="id" data-plan="{}">{}</span>').format(plan_id, plan_id)


# Value -> words filters; each takes the raw value and never raises on one it does not know.
_WORDING_FILTERS: dict[str, Callable[..., str]] = {
    "status_name": wording.status_name,
    "status_headline": wording.status_headline,
    "billing_term": wording.billing_term,
    "role_names": wording.role_names,
    "action_name": wording.action_name,
    "state_name": wording.state_name,
    "operation_result": wording.operation_result,
    "outcome_name": wording.outcome_name,
    "audit_name": wording.audit_name,
    "decision_name": wording.decision_name,
    "source_name": wording.source_name,
}


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bdi"] = bdi
    env.filters["isolate"] = isolate
    env.filters["plan_label"] = plan_label
    env.filters.update(_WORDING_FILTERS)
    env.filters["audit_changes"] = wording.audit_changes  # a list of lines, one per changed field
    env.tests["personal_tenant"] = is_personal_tenant
    return env


def environment() -> Environment:
    """The process-wide environment; templates are compiled once per warm instance and cached."""
    global _environment  # a lazily built process singleton
    if _environment is None:
        with _lock:
            if _environment is None:
                _environment = _build_environment()
    return _environment


def render(name: str, **context: Any) -> str:
    """Renders `name` (e.g. "error.html"); `context` overrides the layout defaults."""
    return environment().get_template(name).render({**LAYOUT_DEFAULTS, **page_links(), **context})
