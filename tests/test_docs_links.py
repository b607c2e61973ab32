"""The docs point at things that exist: every relative link, every anchor it names, and every repository path
written in backticks in README.md, CONTRIBUTING.md and docs/*.md.

The docs name modules and folders (`shared/workflows/sync.py`, `tests/flows`) so a reader can open them; a
rename in the code that leaves the docs behind fails here instead of sending the next reader nowhere.

What counts as a repository path: a backticked span of path characters whose first segment is a top-level
entry of the repository (`shared/...`, `tests/...`, `Makefile`), or, in docs/, an entry beside the doc
(`specs/saasapi.v2.json`); and a bare file name (`test_session_end.py`) that must be some file's name. Spans
with placeholders (`<id>`, `{code}`, `...`), URL paths (`/api/webhook`) and other repositories' paths
(`src/types.ts`) are not paths of this one and are left alone, as is everything inside fenced code blocks.
"""

from __future__ import annotations

import re
import subprocess
import unicodedata
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Files a reader creates or the tools generate, named in the docs but never in the repository.
NOT_IN_REPOSITORY = frozenset({"local.settings.json"})
FILE_SUFFIXES = (".py", ".md", ".json", ".toml", ".yaml", ".yml", ".sh", ".html", ".txt", ".env", ".cfg")

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PATH_LIKE = re.compile(r"[A-Za-z0-9_.*\-/]+")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
EXPLICIT_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


@cache
def repository_files() -> frozenset[str]:
    """Tracked files, and new ones not yet added (git-ignored ones are not the repository's)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return frozenset(path for path in listed.split("\0") if path and (ROOT / path).exists())


@cache
def repository_dirs() -> frozenset[str]:
    return frozenset(str(parent) for path in repository_files() for parent in PurePosixPath(path).parents)


@cache
def file_names() -> frozenset[str]:
    return frozenset(PurePosixPath(path).name for path in repository_files())


def in_repository(relative: str) -> bool:
    """A file or folder of the repository; `*` matches as in a shell glob (`infra/*.sh`)."""
    path = relative.rstrip("/")
    if "*" in path:
        return any(PurePosixPath(candidate).match(path) for candidate in repository_files())
    return path in repository_files() or path in repository_dirs()


def prose(text: str) -> str:
    """The text with fenced code blocks blanked out (their line count kept, so line numbers stay right)."""
    return FENCE.sub(lambda block: "\n" * block.group(0).count("\n"), text)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[:1] in ("L", "N", "M"))
    return kept.replace(" ", "-")


@cache
def anchors_of(relative: str) -> frozenset[str]:
    return anchors((ROOT / relative).read_text(encoding="utf-8"))


def anchors(text: str) -> frozenset[str]:
    """The anchors a doc offers: `<a id=...>` tags and its headings' slugs (repeats get -1, -2, ...)."""
    found = set(EXPLICIT_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for heading in HEADING.findall(prose(text)):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return frozenset(found)


def link_problems(text: str, doc: PurePosixPath) -> list[str]:
    """What is wrong with the relative links of `text`, the doc at `doc` (relative to the root)."""
    own_anchors = anchors(text)
    text = prose(text)
    problems: list[str] = []
    targets = [(m.group(1), m.start()) for m in INLINE_LINK.finditer(text)]
    targets += [(m.group(1), m.start()) for m in REFERENCE_LINK.finditer(text)]
    for target, offset in targets:
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:
            continue
        where = f"{doc}:{line_of(text, offset)}"
        path_part, _, fragment = target.partition("#")
        if not path_part:
            if fragment not in own_anchors:
                problems.append(f"{where}: link to {target!r}: no anchor #{fragment} in this doc")
            continue
        if path_part.startswith("/"):  # GitHub reads a leading / as the repository's root
            resolved = PurePosixPath(path_part.lstrip("/"))
        else:
            resolved = PurePosixPath(doc.parent, path_part)
        relative = str(resolved)
        if relative.startswith("..") or not in_repository(relative):
            problems.append(f"{where}: link to {target!r}: {relative} is not in the repository")
            continue
        if fragment and relative.endswith(".md") and fragment not in anchors_of(relative):
            problems.append(f"{where}: link to {target!r}: {relative} has no anchor #{fragment}")
    return problems


def is_placeholder(span: str) -> bool:
    return any(mark in span for mark in ("<", ">", "{", "}", "...", "\u2026", "$")) or "://" in span


def path_problems(text: str, doc: PurePosixPath) -> list[str]:
    """What is wrong with the backticked repository paths of `text`, the doc at `doc`."""
    text = prose(text)
    doc_dir = doc.parent
    top_level = {PurePosixPath(path).parts[0] for path in repository_files()}
    problems: list[str] = []
    for match in CODE_SPAN.finditer(text):
        span = match.group(1).strip().split("::", 1)[0]
        if is_placeholder(span) or not PATH_LIKE.fullmatch(span) or span.startswith("/"):
            continue
        where = f"{doc}:{line_of(text, match.start())}"
        first = span.split("/", 1)[0]
        if "/" in span or span in top_level:
            if first in top_level:
                found = in_repository(span)
            elif str(doc_dir) != "." and in_repository(str(PurePosixPath(doc_dir, first))):
                found = in_repository(str(PurePosixPath(doc_dir, span)))
            else:
                continue  # another repository's path, a MIME type, a route: not ours to check
            if not found:
                problems.append(f"{where}: `{match.group(1)}` is not in the repository")
        elif span.endswith(FILE_SUFFIXES) and span not in NOT_IN_REPOSITORY and span not in file_names():
            problems.append(f"{where}: `{match.group(1)}` is no file's name in the repository")
    return problems


@pytest.mark.parametrize("doc", doc_files(), ids=lambda doc: str(doc.relative_to(ROOT)))
def test_doc_exists(doc: Path) -> None:
    assert doc.is_file(), f"{doc.relative_to(ROOT)} is missing"


@pytest.mark.parametrize("doc", doc_files(), ids=lambda doc: str(doc.relative_to(ROOT)))
def test_relative_links_lead_somewhere(doc: Path) -> None:
    assert link_problems(doc.read_text(encoding="utf-8"), PurePosixPath(doc.relative_to(ROOT))) == []


@pytest.mark.parametrize("doc", doc_files(), ids=lambda doc: str(doc.relative_to(ROOT)))
def test_backticked_paths_exist(doc: Path) -> None:
    assert path_problems(doc.read_text(encoding="utf-8"), PurePosixPath(doc.relative_to(ROOT))) == []


def test_the_checks_catch_drift() -> None:
    """The checker itself: a renamed module, a dead link and a dead anchor are reported; the rest is not."""
    doc = PurePosixPath("docs/example.md")
    good = (
        "See `shared/workflows/sync.py`, `tests/flows/`, `infra/*.sh`, `specs/saasapi.v2.json`,\n"
        "`test_session_end.py`, `/api/webhook`, `shared/<module>.py`, `src/types.ts`, `application/json`,\n"
        "[R38](requirements.md#r38), [security](/README.md#security), [design](#top) and [web](https://x.test).\n"
        "```\n`shared/gone.py` [gone](gone.md)\n```\n"
        "# Top\n"
    )
    assert path_problems(good, doc) == []
    assert link_problems(good, doc) == []
    bad = "`shared/workflows/renamed.py` `test_gone.py`\n[a](gone.md) [b](requirements.md#r999) [c](/nope/)\n"
    assert len(path_problems(bad, doc)) == 2
    assert len(link_problems(bad, doc)) == 3
    assert slug("Seat licenses: who a seat binds to") == "seat-licenses-who-a-seat-binds-to"
    assert slug("2. Subscription and `Operations` APIs (every call)") == (
        "2-subscription-and-operations-apis-every-call"
    )
