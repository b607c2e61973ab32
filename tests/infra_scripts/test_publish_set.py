"""Only the app is published: .funcignore lets through function_app.py, host.json, requirements.txt and
shared/ (its templates included), nothing else, and the published code needs nothing that stays behind.

Two readers of .funcignore, two matchers. Core Tools (`func azure functionapp publish`) does not read it as
git does: its GitIgnoreParser (a port of the gitignore-parser npm package) turns each line into a regular
expression matched from the start of the path, with no end anchor, `*` for one or more characters within a
folder, `**` across folders, and `!` lines that win whatever their place. azd reads it with gitignore rules
(pathspec here). The published set must be the same under both.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path, PurePosixPath

import pathspec
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FUNCIGNORE = ROOT / ".funcignore"
APP_FILES = {"function_app.py", "host.json", "requirements.txt"}
# Core Tools' own exclusions (FileSystemHelpers.GetLocalFiles), before .funcignore is read.
CORE_TOOLS_IGNORED_DIRECTORIES = {".git", ".vscode"}
CORE_TOOLS_IGNORED_FILES = {".funcignore", ".gitignore", "local.settings.json", "project.lock.json"}
# What a developer's working tree holds beside the tracked files (the worktree's .venv and node_modules are
# symlinks; .local holds the sandbox's keys and the deployment's secrets).
PLANTED = (
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/azure/functions/__init__.py",
    ".venv-checkov/bin/checkov",
    "node_modules/azurite/dist/azurite.js",
    ".local/sandbox/tls/ca-key.pem",
    ".local/queue.sqlite3",
    ".local/azure/contoso-saas/sso-client-secret",
    ".local/azure/contoso-saas/session-secret",
    ".azure/contoso-saas/.env",
    ".env",
    "local.settings.json",
    "publisher.pem",
    "keys/publisher.pem",
    "keys/publisher.key",
    "sandbox/tls/key.pem",
    "shared/__pycache__/config.cpython-311.pyc",
    "shared/domain/__pycache__/status.cpython-311.pyc",
    "__pycache__/function_app.cpython-311.pyc",
    "test-artifacts/landing.png",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/shared/config.data.json",
    ".ruff_cache/0.17.5/123",
    ".hypothesis/examples/abc",
    ".import_linter_cache/x.json",
    ".vscode/settings.json",
    ".git/HEAD",
    "azure.yaml",
    "infra/main.bicep",
    "infra/main.parameters.json",
)


def working_tree() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted({path for path in tracked if path} | set(PLANTED))


def core_tools_accepts(funcignore: str) -> Callable[[str], bool]:
    """Core Tools' GitIgnoreParser.Accepts, line for line (src/Azure.Functions.Cli/Common/GitIgnoreParser.cs
    in Core Tools): each line is matched against a file's path relative to the app's root, from its start,
    without an end anchor."""
    positive: list[str] = []
    negative: list[str] = []
    for raw in funcignore.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!").removeprefix("/")
        (negative if negated else positive).append(line)

    def pattern(line: str) -> str:
        escaped = re.sub(r"[\-\[\]\/\{\}\(\)\+\?\.\\\^\$\|]", lambda match: "\\" + match.group(0), line)
        return escaped.replace("**", "(.+)").replace("*", "([^\\/]+)")

    def expression(lines: list[str]) -> re.Pattern[str]:
        if not lines:
            return re.compile("$^")
        return re.compile("^((" + ")|(".join(pattern(line) for line in sorted(lines)) + "))")

    positives, negatives = expression(positive), expression(negative)
    return lambda path: bool(negatives.match(path)) or not positives.match(path)


def published_by_core_tools(paths: list[str]) -> set[str]:
    accepts = core_tools_accepts(FUNCIGNORE.read_text(encoding="utf-8"))
    return {
        path
        for path in paths
        if not set(PurePosixPath(path).parts[:-1]) & CORE_TOOLS_IGNORED_DIRECTORIES
        and PurePosixPath(path).name not in CORE_TOOLS_IGNORED_FILES
        and accepts(path)
    }


def published_by_gitignore_rules(paths: list[str]) -> set[str]:
    spec = pathspec.GitIgnoreSpec.from_lines(FUNCIGNORE.read_text(encoding="utf-8").splitlines())
    return {path for path in paths if not spec.match_file(path)}


def expected(paths: list[str]) -> set[str]:
    return {
        path
        for path in paths
        if path in APP_FILES or (path.startswith("shared/") and "__pycache__" not in path)
    }


@pytest.mark.parametrize("publisher", [published_by_core_tools, published_by_gitignore_rules])
def test_only_the_app_is_published(publisher: Callable[[list[str]], set[str]]) -> None:
    paths = working_tree()

    published = publisher(paths)

    assert published == expected(paths), (
        f"published but not the app: {sorted(published - expected(paths))}; "
        f"the app but not published: {sorted(expected(paths) - published)}"
    )
    assert any(path.startswith("shared/templates/") for path in published)
    assert not [path for path in published if path.endswith((".pem", ".key", ".pyc"))]


def test_the_core_tools_port_reads_patterns_as_core_tools_does() -> None:
    accepts = core_tools_accepts("/tests/\n*.pyc\n**/*.pyc\n/.venv*\n!keep.md\n*.md\n")
    assert not accepts("tests/unit/test_x.py")
    assert not accepts("top.pyc")
    assert not accepts("shared/deep/x.pyc")
    assert accepts(".venv/bin/python")  # `*` needs one character at least: `.venv*` misses `.venv`
    assert not accepts(".venv-checkov/bin/x")
    assert accepts("keep.md")  # a `!` line wins even though `*.md` comes after it
    assert accepts("shared/readme.md")  # `*` stays within the first folder: the match is anchored at the root
    assert not core_tools_accepts("/Makefile\n")("Makefile.local")  # no end anchor: a line is a prefix


def test_the_published_code_needs_nothing_that_stays_behind() -> None:
    """Every module function_app.py and shared/ import is shared/, the standard library, or installed from
    requirements.txt (directly or as a dependency); none is tests/, sandbox/, devhost/ or bench/."""
    allowed = distributions_of_requirements()
    providers = metadata.packages_distributions()
    problems = []
    for source in [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py"))]:
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top == "shared" or top in sys.stdlib_module_names or top == "__future__":
                    continue
                where = f"{source.relative_to(ROOT)}:{node.lineno} imports {name}"
                if top in {"tests", "sandbox", "devhost", "bench"}:
                    problems.append(f"{where}, which is not published")
                elif not set(providers.get(top, [])) & allowed:
                    problems.append(f"{where}, which requirements.txt does not install")
    assert problems == []


def distributions_of_requirements() -> set[str]:
    """The distributions requirements.txt installs: its own and, transitively, what they require (the extras
    asked for included, other extras and markers that do not hold here left out)."""
    pending = [
        Requirement(line.split("#")[0])
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.split("#")[0].strip()
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    found: set[str] = set()
    while pending:
        requirement = pending.pop()
        key = (requirement.name.lower(), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        found.add(distribution.metadata["Name"])
        extras = requirement.extras or {""}
        for text in distribution.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(needed)
    return found
