"""Every requirement id cited in a tracked file ("(R38)", "R8-R12", "R34, R36") has an entry in
docs/requirements.md, so a reader of the repository can always look it up."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "docs" / "requirements.md"

TEXT_SUFFIXES = frozenset({".py", ".md", ".html", ".yaml", ".json", ".sh", ".toml"})
TEXT_NAMES = frozenset({"Makefile"})
# Microsoft's own files (their descriptions never cite our ids) and the generated lock file.
SKIPPED_PREFIXES = ("docs/specs/",)
SKIPPED_NAMES = frozenset({"package-lock.json"})

# A single id, or a range written with a hyphen or an en dash (U+2013): "R8-R12". `\b` on both sides keeps
# ids inside words and longer numbers out ("R2D2", "AR12", "R123").
CITATION = re.compile(r"\bR(\d{1,2})\b(?:\s*[-\u2013]\s*R(\d{1,2})\b)?")
ANCHOR = re.compile(r'<a id="r(\d{1,2})"></a>')


def cited_ids(text: str) -> list[int]:
    """The requirement numbers a piece of text cites, ranges expanded; a backwards range cites its ends."""
    ids: list[int] = []
    for match in CITATION.finditer(text):
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        ids.extend(range(first, last + 1) if first <= last else (first, last))
    return ids


def tracked_text_files() -> list[str]:
    # The suite runs in a checkout (make test, CI); outside one this fails loudly rather than skip.
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout
    return sorted(
        path
        for path in listed.split("\0")
        if path
        and (Path(path).suffix in TEXT_SUFFIXES or Path(path).name in TEXT_NAMES)
        and not path.startswith(SKIPPED_PREFIXES)
        and Path(path).name not in SKIPPED_NAMES
    )


def citations() -> list[tuple[str, int, int]]:
    """(file, line number, requirement number) for every citation in the tracked text files."""
    found: list[tuple[str, int, int]] = []
    for path in tracked_text_files():
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            found.extend((path, number, rid) for rid in dict.fromkeys(cited_ids(line)))
    return found


def anchored_ids() -> list[int]:
    return [int(rid) for rid in ANCHOR.findall(REQUIREMENTS.read_text(encoding="utf-8"))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("verify the operation first (R38).", [38]),
        ("R8-R12 and R39\u2013R41", [8, 9, 10, 11, 12, 39, 40, 41]),
        ("(R34, R36)", [34, 36]),
        ("R43 - R45", [43, 44, 45]),
        ("R4 / C1", [4]),
        ("R2D2, AR12, R123, r12, 0xR1, sha 9fR3a", []),
    ],
)
def test_the_pattern_reads_citations(text: str, expected: list[int]) -> None:
    assert cited_ids(text) == expected


def test_the_scan_sees_the_citations() -> None:
    """Guards against a scan that passes because it reads nothing."""
    files = {path for path, _, _ in citations()}
    assert {"README.md", "function_app.py", "shared/workflows/operations.py"} <= files


def test_every_requirement_has_one_anchor_and_none_is_missing() -> None:
    ids = anchored_ids()
    duplicates = sorted({rid for rid in ids if ids.count(rid) > 1})
    assert not duplicates, f"docs/requirements.md: more than one anchor for {duplicates}"
    gaps = sorted(set(range(1, max(ids) + 1)) - set(ids))
    assert not gaps, f"docs/requirements.md: no entry for {['R' + str(rid) for rid in gaps]}"


def test_every_cited_requirement_is_in_the_requirements_page() -> None:
    anchors = set(anchored_ids())
    missing = [f"{path}:{line}: R{rid}" for path, line, rid in citations() if rid not in anchors]
    assert not missing, "cited without an entry in docs/requirements.md:\n" + "\n".join(missing)


def test_the_requirements_page_stays_inside_the_repository() -> None:
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    parent = "../"  # outside-path-ok: the string the page must not contain
    outside = [f"docs/requirements.md:{n}" for n, line in enumerate(lines, start=1) if parent in line]
    assert not outside, f"paths outside the repository: {outside}"
