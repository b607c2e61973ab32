"""The Bicep templates under infra/, parsed with pycep, and small readers for what the tests ask of them.

pycep turns a template into JSON-like data: literals stay literals, while a reference to a parameter,
variable or resource is a bare string holding its name, `a.b.c` is a nested `property_accessor`, and a
function call is `{"function": {"type": ..., "parameters": {...}}}`. The readers below follow variables,
`concat` and conditionals far enough to list what a template can emit (app settings, role assignments),
without pretending to evaluate Bicep.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def template(path: Path) -> dict[str, Any]:
    """The parsed template; pycep raises on anything that is not valid Bicep to its grammar."""
    return BicepParser().parse(text=path.read_text())


def by_name(relative: str) -> dict[str, Any]:
    return template(INFRA / relative)


def queues() -> dict[str, Any]:
    """infra/queues.json, the one source of the queue names and properties."""
    return json.loads((INFRA / "queues.json").read_text())


@dataclass(frozen=True)
class Resource:
    file: Path
    symbol: str
    type: str
    existing: bool
    conditional: bool
    config: dict[str, Any]


def resources(type_: str | None = None, *, existing: bool = False) -> list[Resource]:
    """Resources declared in any template, of `type_` if given; `existing` references only on request."""
    found: list[Resource] = []
    for path in bicep_files():
        for symbol, declaration in template(path).get("resources", {}).items():
            config = declaration["config"]
            conditional = "condition" in config and "config" in config
            if conditional:
                config = config["config"]
            if declaration["existing"] and not existing:
                continue
            if type_ is None or declaration["type"] == type_:
                found.append(
                    Resource(path, symbol, declaration["type"], declaration["existing"], conditional, config)
                )
    return found


def one(type_: str) -> Resource:
    found = resources(type_)
    assert len(found) == 1, f"expected exactly one {type_}, found {[r.symbol for r in found]}"
    return found[0]


def accessor(expr: Any) -> str | None:
    """`a.b.c` for a reference or property access chain, None for anything else."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "property_accessor":
        operands = expr["operator"]["operands"]
        first, rest = accessor(operands["operand_1"]), accessor(operands["operand_2"])
        return f"{first}.{rest}" if first is not None and rest is not None else None
    return None


def function(expr: Any, name: str) -> dict[str, Any] | None:
    """The parameters of a call to `name` (pycep's snake_case name), or None."""
    if isinstance(expr, dict) and expr.get("function", {}).get("type") == name:
        parameters: dict[str, Any] = expr["function"]["parameters"]
        return parameters
    return None


def array_items(doc: dict[str, Any], expr: Any) -> Iterator[Any]:
    """Every item an array expression can hold: variables followed, `concat` flattened, both branches of a
    conditional taken (a setting that exists only when a parameter is given still counts)."""
    if isinstance(expr, list):
        yield from expr
        return
    if isinstance(expr, str) and expr in doc.get("variables", {}):
        yield from array_items(doc, doc["variables"][expr]["value"])
        return
    concat = function(expr, "concat")
    if concat is not None:
        for argument in concat.values():
            yield from array_items(doc, argument)
        return
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "conditional":
        operands = expr["operator"]["operands"]
        yield from array_items(doc, operands["true_value"])
        yield from array_items(doc, operands["false_value"])
        return
    raise AssertionError(f"cannot list the items of {expr!r}")


def conditional_branches(expr: Any) -> tuple[Any, Any] | None:
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "conditional":
        operands = expr["operator"]["operands"]
        return operands["true_value"], operands["false_value"]
    return None


def decorators(declaration: dict[str, Any]) -> dict[str, Any]:
    """A parameter's decorators by type (`secure`, `allowed`, `metadata`, `min_length`, ...)."""
    return {item["type"]: item.get("argument") for item in declaration.get("decorators", [])}


def without_comments(path: Path) -> str:
    """The template as data (comments dropped): what a text search should look at."""
    return json.dumps(template(path))
