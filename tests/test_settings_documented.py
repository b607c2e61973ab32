"""Every setting the app reads is listed in local.settings.example.json and explained in the README."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ_PATTERN = re.compile(r"""(?:env\.get|_int\(env,|_float\(env,|environ\.get)\(?\s*["']([A-Za-z_]+)["']""")


# `%NAME%` in a binding of function_app.py: the Functions host reads that app setting (a timer's schedule).
BINDING_PATTERN = re.compile(r"""["']%(\w+)%["']""")


def settings_read_by_the_app() -> set[str]:
    names: set[str] = set(BINDING_PATTERN.findall((ROOT / "function_app.py").read_text()))
    for path in (ROOT / "shared").rglob("*.py"):
        names |= set(READ_PATTERN.findall(path.read_text()))
    return names


def test_the_pattern_finds_settings() -> None:
    names = settings_read_by_the_app()
    assert {"PUBLISHER_TENANT_ID", "FULFILLMENT_MAX_ATTEMPTS", "FAULT_POINTS", "RECONCILE_SCHEDULE"} <= names


def test_every_setting_is_in_the_example_file() -> None:
    example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    missing = settings_read_by_the_app() - set(example)
    assert not missing, f"add to local.settings.example.json: {sorted(missing)}"


def test_every_setting_is_explained_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in settings_read_by_the_app() if f"`{name}`" not in readme}
    assert not missing, f"explain in README.md: {sorted(missing)}"
