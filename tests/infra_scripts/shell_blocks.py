"""The shell blocks of the docs, and the `az` commands in them.

Used by the README test (bash -n, shellcheck, every az command against the stand-in's table) and by
`az_real_check.py`, which runs the same commands through the real azure-cli parser. Standard library only:
the second runs in a throwaway azure-cli venv.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS_WITH_COMMANDS = ("README.md", "infra/README.md")
FENCE = re.compile(r"^```(bash|sh)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "time", "!", "{", "}"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
REDIRECTION = re.compile(r"\d*(>>?|<)&?")


def shell_blocks(path: Path) -> list[tuple[int, str]]:
    """(first line number, code) of every ```bash and ```sh block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start()) + 2, match.group(2)) for match in FENCE.finditer(text)]


def logical_lines(script: str) -> list[str]:
    """Lines with backslash continuations joined, heredoc bodies left out."""
    lines: list[str] = []
    ending: str | None = None
    for line in script.replace("\\\n", " ").splitlines():
        if ending is not None:
            if line.strip() == ending:
                ending = None
            continue
        heredoc = HEREDOC.search(line)
        if heredoc:
            ending = heredoc.group(1)
        lines.append(line)
    return lines


def _closing_paren(text: str, start: int) -> int:
    """Index of the `)` that closes the `(` at `start`, skipping quoted text and nested parentheses."""
    depth, index, quote = 0, start, ""
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                index += 1
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"unbalanced parentheses in: {text}")


def _split(line: str) -> tuple[list[str], list[str]]:
    """The simple commands of a line (split at ; | & and parentheses) with each $(...) replaced by a word,
    and the scripts inside those $(...)."""
    commands: list[str] = []
    inner: list[str] = []
    current: list[str] = []
    index, quote = 0, ""
    while index < len(line):
        char = line[index]
        if char == "$" and line[index + 1 : index + 2] == "(" and quote != "'":
            end = _closing_paren(line, index + 1)
            inner.append(line[index + 2 : end])
            current.append("SUBSTITUTED")
            index = end + 1
            continue
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"' and index + 1 < len(line):
                current.append(line[index + 1])
                index += 1
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == "\\" and index + 1 < len(line):
            current.append(line[index : index + 2])
            index += 1
        elif char == "#" and (not current or current[-1].isspace()):
            break
        elif char in ";|&()":
            commands.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    commands.append("".join(current))
    return [command for command in commands if command.strip()], inner


def _words(command: str) -> list[str]:
    words = shlex.split(command)
    while words and (words[0] in KEYWORDS or ASSIGNMENT.match(words[0])):
        words.pop(0)
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        redirection = REDIRECTION.match(word)
        if redirection:
            skip_next = redirection.end() == len(word)
            continue
        kept.append(word)
    return kept


def commands_of(script: str, program: str) -> list[list[str]]:
    """Every invocation of `program` in a shell script, as its arguments; variables stay as written."""
    found: list[list[str]] = []
    pending = logical_lines(script)
    while pending:
        commands, inner = _split(pending.pop(0))
        pending.extend(inner)
        for command in commands:
            words = _words(command)
            if words and words[0] == program:
                found.append(words[1:])
    return found


def az_commands_in_docs(root: Path = ROOT) -> list[tuple[str, list[str]]]:
    """(where, arguments) of every az command in the shell blocks of the docs."""
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS_WITH_COMMANDS:
        for line, code in shell_blocks(root / doc):
            found.extend((f"{doc}:{line}", argv) for argv in commands_of(code, "az"))
    return found
