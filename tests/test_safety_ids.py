"""Issue 8, point 1: external_id is the original scripts' hash, and --user_time finds the
participants the original upload created (spaces removed as a fallback, saying which matched)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from clitools import run_cli
from fake_platform import FakeParticipant, FakePlatform
from longterm_sync.config import load_config
from longterm_sync.ids import ORIGINAL_SALT, external_id

VECTORS = [
    (
        ("Jan", "Kowalski", "123456789"),
        "76a8eb829fad54a22a55a3fb4cec0e4d3dbcfa11999d06ee8de771c4aab6927b",
    ),
    (
        ("Long_001", "Stress_test", "1234567"),
        "3959dfcd588ff019158b5332f6b5be659d925c45e082768dfe7871c42e18357c",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), VECTORS)
def test_original_vectors(fields: tuple[str, str, str], expected: str) -> None:
    assert external_id(*fields, "your-salt-here") == expected
    assert external_id(*fields) == expected  # the original's salt is the default


def test_fields_are_hashed_as_given() -> None:
    assert external_id(" Jan", "Kowalski", "1") != external_id("Jan", "Kowalski", "1")


def test_salt_from_environment_with_url_and_no_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LONGTERM_SALT", "pepper")
    monkeypatch.delenv("LONGTERM_CONFIG", raising=False)
    profile = load_config(None).profile("https://example.org")
    assert profile.salt == "pepper"
    monkeypatch.delenv("LONGTERM_SALT")
    assert load_config(None).profile("https://example.org").salt == ORIGINAL_SALT


def test_profile_salt_env_applies_to_url_servers(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('salt_env = "MY_SALT"\n')
    result = run_cli(
        ["config", "--config", str(config), "--server=https://example.org", "--json"],
        cwd=tmp_path,
        env={"MY_SALT": "secret-pepper"},
    )
    assert result.code == 0, result.err
    salt = orjson.loads(result.out)["salt"]
    assert "custom" in salt and "MY_SALT" in salt and "secret-pepper" not in result.out


def test_config_says_when_the_salt_is_the_original_default(tmp_path: Path) -> None:
    result = run_cli(["config", "--server=https://example.org"], cwd=tmp_path)
    assert result.code == 0, result.err
    (line,) = [ln for ln in result.out.splitlines() if ln.startswith("salt:")]
    assert "original" in line and "your-salt-here" in line
    custom = run_cli(
        ["config", "--server=https://example.org"], cwd=tmp_path, env={"LONGTERM_SALT": "x1"}
    )
    (line,) = [ln for ln in custom.out.splitlines() if ln.startswith("salt:")]
    assert "custom" in line and "LONGTERM_SALT" in line and "x1" not in line


def _download(fake: FakePlatform, out: Path, *flags: str) -> tuple[int, str]:
    result = run_cli(["download-results", *fake.args(), "--output-dir", str(out), *flags], cwd=out)
    assert "Traceback" not in result.err, result.err
    return result.code, result.out + result.err


def test_user_time_finds_a_participant_of_the_original_upload(tmp_path: Path) -> None:
    ext = external_id("Jan", "Kowalski", "123456789")
    with FakePlatform([FakeParticipant(ext)]) as fake:
        code, text = _download(fake, tmp_path, "--user_time=Jan,Kowalski,123456789")
    assert code == 0, text
    assert len(orjson.loads((tmp_path / f"results_{ext}.json").read_bytes())) == 5


def test_user_time_as_written_first(tmp_path: Path) -> None:
    written = external_id("Anna Maria", "Nowak", "600100200")
    squeezed = external_id("AnnaMaria", "Nowak", "600100200")
    with FakePlatform([FakeParticipant(written), FakeParticipant(squeezed)]) as fake:
        code, text = _download(fake, tmp_path, "--user_time=Anna Maria,Nowak,600100200")
    assert code == 0, text
    assert (tmp_path / f"results_{written}.json").exists()
    assert not (tmp_path / f"results_{squeezed}.json").exists()
    assert "as written" in text


def test_user_time_falls_back_to_spaces_removed(tmp_path: Path) -> None:
    squeezed = external_id("AnnaMaria", "Nowak", "600100200")
    with FakePlatform([FakeParticipant(squeezed)]) as fake:
        code, text = _download(fake, tmp_path, "--user_time=Anna Maria,Nowak,600 100 200")
    assert code == 0, text
    assert (tmp_path / f"results_{squeezed}.json").exists()
    assert "every space removed" in text
