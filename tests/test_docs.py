"""Every command and flag is documented in the README, and every shim runs."""

from __future__ import annotations

import argparse

import pytest

from clitools import REPO, run_cli
from longterm_sync.cli import build_parser
from longterm_sync.cli.docs import BEGIN, END, command_reference

README = REPO / "README.md"


def readme_block() -> str:
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, "README lost its command reference markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_readme_leads_with_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:1500]
    assert "make demo" in head and "make test" in head


def test_readme_reference_matches_help() -> None:
    assert readme_block() == command_reference().strip(), "README is stale: run `make docs`"


def _flags() -> list[tuple[str, str]]:
    parser, modules = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for name in modules:
        for action in sub.choices[name]._actions:
            out.extend((name, opt) for opt in action.option_strings if opt.startswith("--"))
    return out


@pytest.mark.parametrize(("command", "flag"), _flags())
def test_every_flag_is_in_the_readme(command: str, flag: str) -> None:
    block = readme_block()
    section = block.split(f"### `longterm {command}`", 1)[1].split("### `longterm ", 1)[0]
    assert flag in section, f"{command} {flag} is not documented in README.md"


def test_every_command_accepts_config() -> None:
    _, modules = build_parser()
    flags = set(_flags())
    missing = [name for name in modules if (name, "--config") not in flags]
    assert not missing, f"commands without --config: {missing}"


SHIMS = sorted(p.stem for p in (REPO / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SHIMS)
def test_script_shim_help_has_exit_status(script: str) -> None:
    result = run_cli(["--help"], script=script)
    assert result.code == 0, result.err
    assert "EXIT STATUS" in result.out
    assert f"scripts/{script}.py" in readme_block()


def test_sandbox_help_points_to_the_projects_own_protocol_doc() -> None:
    """A user's clone has no ../shared/API.md: the protocol is described in docs/."""
    result = run_cli(["sandbox", "--help"])
    assert result.code == 0, result.err
    assert "docs/PROTOCOL.md" in " ".join(result.out.split())
    assert "API.md" not in result.out.replace("docs/PROTOCOL.md", "")
    protocol = (REPO / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    for behaviour in ("Invalid token.", "may not be blank", "poison row", "ambiguous", ".json"):
        assert behaviour in protocol
    shipped = [*(REPO / "src").rglob("*.py"), README, REPO / "bench" / "README.md"]
    assert not [p.name for p in shipped if "API.md" in p.read_text(encoding="utf-8")]
