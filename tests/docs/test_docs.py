"""The README and the docs site: short README, a site that builds strictly, commands that work as written,
the gateway's API page equal to its OpenAPI document, `make help` naming every target's variables."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.gateway_api_page import PAGE, openapi_document, render
from tests.docs.shell_blocks import COMMAND_PAGES, shell_commands
from tests.support.settings import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
MAKEFILE = REPO / "Makefile"
# Words a reader should never meet: the project's own history, not the product.
DEAD_WORDS = re.compile(r"\bseed\b|\bissue \d+|\bissues? #\d+|before the fix above|before these changes", re.I)
INPUT_SUFFIXES = (".parquet", ".csv", ".xml", ".py", ".md", ".yml", ".yaml", ".toml", ".json", ".txt")


def user_pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_readme_is_at_most_150_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"


@pytest.mark.parametrize("page", user_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_history_words_where_a_user_reads(page):
    found = [
        f"{page.name}:{number}: {line.strip()[:100]}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if DEAD_WORDS.search(line)
    ]
    assert found == [], "history belongs in CHANGELOG.md:\n" + "\n".join(found)


def test_the_readmes_links_to_files_exist():
    text = README.read_text(encoding="utf-8")
    targets = [t.split("#", 1)[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    assert targets, "the README links to the docs"
    assert [t for t in targets if t and not (REPO / t).exists()] == []


def test_the_gateway_api_page_is_generated_from_the_openapi_document():
    expected = render(openapi_document())
    assert PAGE.read_text(encoding="utf-8") == expected, (
        "docs/gateway-api.md differs from the gateway's OpenAPI document: run "
        ".venv/bin/python -m tests.docs.gateway_api_page and commit the page"
    )


def test_every_route_of_the_gateway_has_a_section():
    document = openapi_document()
    page = PAGE.read_text(encoding="utf-8")
    for path, item in document["paths"].items():
        for method in item:
            assert f"### {method.upper()} {path}\n" in page


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (requirements.txt)")
def test_the_docs_site_builds_strictly(tmp_path):
    """--strict: a broken link or anchor, or a page missing from mkdocs.yml's nav, fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "gateway-api" / "index.html").exists()


def test_every_docs_page_is_in_the_navigation():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if f": {p.name}\n" not in nav]
    assert missing == []


# --- the Makefile ---------------------------------------------------------------------------------------------


@functools.cache
def make_targets() -> dict[str, dict]:
    """target → {"declared": variables its `## [..]` names, "used": user variables its recipe reads, "help": bool}."""
    lines = MAKEFILE.read_text(encoding="utf-8").splitlines()
    variables = {m.group(1) for line in lines if (m := re.match(r"^([A-Z_]+) \?=", line))}
    derived = {"DATA_ARG": "DATA", "PORT_ARG": "PORT"}
    targets: dict[str, dict] = {}
    current = None
    for line in lines:
        header = re.match(r"^([a-z][a-z-]*):(?!=)(.*)$", line)
        if header:
            name, rest = header.groups()
            declared_match = re.search(r"## \[([^\]]*)\]", rest)
            current = targets[name] = {
                "declared": set(declared_match.group(1).split()) if declared_match else set(),
                "used": set(),
                "help": "## " in rest,
            }
            continue
        if current is not None and line.startswith("\t"):
            for reference in re.findall(r"\$\(([A-Z_]+)\)", line):
                reference = derived.get(reference, reference)
                if reference in variables:
                    current["used"].add(reference)
        elif current is not None and line and not line.startswith("#"):
            current = None
    return targets


def test_every_target_is_in_make_help_with_the_variables_its_recipe_reads():
    targets = {name: t for name, t in make_targets().items() if not name.startswith(".")}
    assert "help" in targets and "docs" in targets
    problems = []
    for name, target in targets.items():
        if not target["help"]:
            problems.append(f"{name}: no `## ` description (make help does not list it)")
            continue
        if unnamed := sorted(target["used"] - target["declared"]):
            problems.append(f"{name}: reads {unnamed} but its `## [..]` does not name them")
        if unread := sorted(target["declared"] - target["used"]):
            problems.append(f"{name}: names {unread} that its recipe never reads")
    assert problems == []
    listing = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True).stdout
    for name, target in targets.items():
        row = next((line for line in listing.splitlines() if line.split()[:1] == [name]), None)
        assert row is not None, f"make help does not list {name}"
        assert all(var in row.split() for var in target["declared"]), row


def test_the_ports_are_the_same_variable_wherever_they_are_used():
    targets = make_targets()
    assert targets["ui"]["declared"] == {"PORT"}
    assert {"APP_PORT", "GATEWAY_PORT"} <= targets["app"]["declared"]
    assert {"GATEWAY_PORT", "WORKERS"} <= targets["gateway"]["declared"]
    assert {"PROM_PORT", "GATEWAY_PORT"} <= targets["observe"]["declared"]
    assert "SERVE_PORT" in targets["serve"]["declared"]


# --- the commands of the README and the getting-started page ----------------------------------------------------


@functools.cache
def sotag_help(sub: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sotag", sub, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"`python -m sotag {sub} --help` fails: {result.stderr[-500:]}"
    return result.stdout


def _sotag_problems(arguments: list[str]) -> list[str]:
    if not arguments:
        return []
    sub, flags = arguments[0], [a.split("=", 1)[0] for a in arguments[1:] if a.startswith("--")]
    text = sotag_help(sub)
    return [f"sotag {sub}: no flag {flag}" for flag in flags if not re.search(rf"{re.escape(flag)}\b", text)]


def _path_problems(value: str) -> list[str]:
    if "://" in value or "<" in value or "$" in value:
        return []
    return [] if (REPO / value).exists() else [f"no such file or folder: {value}"]


def check_command(command: str) -> list[str]:
    words = shlex.split(command)
    while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
        words = words[1:]
    if not words:
        return []
    program = words[0]
    if program == "make":
        targets = make_targets()
        names = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assignments = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        problems = [f"make {n}: no such target" for n in names if n not in targets]
        for name in (n for n in names if n in targets):
            problems += [f"make {name}: takes no {var}" for var in assignments if var not in targets[name]["declared"]]
        for var in ("DATA", "IN"):
            for value in assignments.get(var, "").split():
                problems += _path_problems(value)
        if "ARGS" in assignments:
            for name in (n for n in names if n in targets):
                recipe_sub = _sotag_sub_of(name)
                if recipe_sub:
                    problems += _sotag_problems([recipe_sub, *shlex.split(assignments["ARGS"])])
        return problems
    if program.endswith("sotag") or words[:3] == ["python", "-m", "sotag"]:
        arguments = words[3:] if program == "python" else words[1:]
        problems = _sotag_problems(arguments)
        problems += [p for a in arguments[1:] if a.endswith(INPUT_SUFFIXES) and "/" in a for p in _path_problems(a)]
        return problems
    return []


def _sotag_sub_of(target: str) -> str | None:
    """The sotag sub-command a make target runs, read from its recipe."""
    text = MAKEFILE.read_text(encoding="utf-8")
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    found = re.search(r"(?:\$\(BIN\)/sotag|sotag_coded,)\s*([a-z-]+)", recipe.group(1)) if recipe else None
    return found.group(1) if found else None


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_commands_work_as_written(page):
    commands = shell_commands(page)
    assert commands, f"{page.name} shows commands"
    problems = [f"`{command}`: {problem}" for command in commands for problem in check_command(command)]
    assert problems == []


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_every_make_command_in_the_docs_names_a_target_and_its_variables(page):
    problems = []
    for command in shell_commands(page):
        words = shlex.split(command, comments=False) if command.count('"') % 2 == 0 else command.split()
        while words and re.match(r"^[A-Z_]+=", words[0]):
            words = words[1:]
        if words[:1] != ["make"]:
            continue
        targets = make_targets()
        names = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
        assignments = [w.split("=", 1)[0] for w in words[1:] if "=" in w]
        problems += [f"`{command}`: no target {n}" for n in names if n not in targets]
        problems += [
            f"`{command}`: {n} takes no {var}"
            for n in names
            if n in targets
            for var in assignments
            if var not in targets[n]["declared"]
        ]
    assert problems == []


def test_the_checker_catches_what_does_not_exist():
    assert check_command("make no-such-target")
    assert check_command("make ui APP_PORT=1")
    assert check_command("make train DATA=no/such.parquet")
    assert check_command(".venv/bin/sotag promote --no-such-flag")
    assert check_command("make train ARGS='--no-such-flag'")
    assert check_command("make gateway GATEWAY_PORT=8000 WORKERS=2") == []
