"""Catalog files fail loudly with the faulty field named; term dates follow R68 (end = day before renewal)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sandbox.catalog import CatalogError, load_catalog, offers_from_json
from sandbox.marketplace.purchases import new_purchase_token
from sandbox.marketplace.rules import term_end


@pytest.mark.parametrize(
    ("start", "unit", "end"),
    [
        (date(2025, 1, 15), "P1M", date(2025, 2, 14)),
        (date(2025, 1, 31), "P1M", date(2025, 2, 27)),
        (date(2025, 12, 1), "P1M", date(2025, 12, 31)),
        (date(2024, 2, 29), "P1Y", date(2025, 2, 27)),
        (date(2025, 3, 1), "P3Y", date(2028, 2, 29)),
    ],
)
def test_term_end_is_the_last_day_before_the_next_term(start: date, unit: str, end: date) -> None:
    assert term_end(start, unit) == end


def test_the_example_catalog_loads() -> None:
    offers = load_catalog(Path(__file__).resolve().parents[2] / "sandbox" / "catalog.example.json")
    assert list(offers) == ["contoso-analytics"]


def test_a_missing_catalog_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.json"):
        load_catalog(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"offers": {}}, "'offers' list"),
        ({"offers": [{"displayName": "x"}]}, "'offerId'"),
        ({"offers": [{"offerId": "o", "plans": [{"planId": "a"}, {"planId": "a"}]}]}, "unique"),
        (
            {"offers": [{"offerId": "o", "plans": [{"planId": "a", "audienceTenants": "t"}]}]},
            "audienceTenants",
        ),
    ],
)
def test_bad_catalogs_name_the_fault(document: object, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        offers_from_json(document)


def test_purchase_tokens_are_unique_base64_with_the_awkward_characters() -> None:
    tokens = {new_purchase_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all({"+", "/", "="} <= set(token) for token in tokens)
