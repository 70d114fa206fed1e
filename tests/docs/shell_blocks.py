"""The shell commands the README and the getting-started page show: one parser for the test that checks them
against the Makefile and the command line and for the one that runs them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.settings import REPO

# The pages whose every shell command is checked (tests/docs/test_docs.py) and run (test_shell_blocks.py).
COMMAND_PAGES = (REPO / "README.md", REPO / "docs" / "getting-started.md")
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell|console)\n(.*?)```", re.S)


def shell_lines(page: Path) -> list[str]:
    """Each command line of the page's shell blocks, as a user would paste it: continuations joined, comments
    (whole lines and `  # …` tails) dropped."""
    lines = []
    for block in SHELL_BLOCK.findall(page.read_text(encoding="utf-8")):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(re.split(r"\s+#\s", line, maxsplit=1)[0].strip())
    return lines


def shell_commands(page: Path) -> list[str]:
    """Each simple command of the page's shell lines (`a && b | c` is three)."""
    commands = []
    for line in shell_lines(page):
        for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
            part = part.strip().rstrip("&").strip()
            if part:
                commands.append(part)
    return commands
