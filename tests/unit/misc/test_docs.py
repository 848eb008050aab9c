"""Docs that could drift are generated; these tests keep the committed copies current."""

from __future__ import annotations

import re
from pathlib import Path

import click

from homeport.cli import cli
from homeport.cli.docs import cli_reference
from homeport.config import reference_markdown

ROOT = Path(__file__).resolve().parents[3]


def test_config_reference_is_current() -> None:
    assert (ROOT / "docs/config.md").read_text() == reference_markdown(), (
        "regenerate with: homeport config reference > docs/config.md"
    )


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs/cli.md").read_text() == cli_reference(cli), (
        "regenerate with: homeport config cli-reference > docs/cli.md"
    )


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/test" in readme
    assert (ROOT / "scripts/test").exists()
    ci = (ROOT / ".ci/run").read_text()
    assert "./scripts/test" in ci, "CI must run the README's test command"
    commands = cli.list_commands(click.Context(cli))
    for command in re.findall(r"^homeport ([a-z]+)", readme, re.M):
        assert command in commands, f"README mentions unknown command {command}"


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to missing {target}"
