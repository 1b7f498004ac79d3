"""Config profiles: lookup order, --server as profile or URL, tokens masked, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import REPO, run_cli
from longterm_sync.config import Limits, load_config, mask_token, parse_config
from longterm_sync.errors import ConfigError

TOKEN = "d2f1" + "0" * 32 + "7594"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_mask_token_shows_only_ends() -> None:
    assert mask_token(TOKEN) == "d2f1...7594"
    assert mask_token(None) == "<none>"
    assert mask_token("short") == "*****"


def test_example_config_parses_and_documents_every_limit() -> None:
    config = load_config(REPO / "config.toml")
    assert config.limits == Limits()
    text = (REPO / "config.toml").read_text()
    for name in Limits.__dataclass_fields__:
        assert f"{name} =" in text, f"config.toml does not document [limits] {name}"


def test_dev_and_prod_read_tokens_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKEN_PROD", TOKEN)
    monkeypatch.delenv("TOKEN_DEV", raising=False)
    cfg = load_config(write(tmp_path / "c.toml", '[servers.prod]\nurl = "https://p.example"\n'))
    prod = cfg.profile("prod")
    assert prod.token == TOKEN and prod.url == "https://p.example"
    assert prod.ssh_user == "media" and prod.ssh_port == 22 and prod.ssh_host == "p.example"
    assert prod.key == Path("~/.ssh/media@p.example").expanduser()
    assert TOKEN not in repr(prod) and "d2f1...7594" in repr(prod)


def test_dotenv_is_read_like_the_old_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOKEN_DEV", raising=False)
    write(tmp_path / ".env", f"TOKEN_DEV='{TOKEN}'\n")
    cfg = load_config(write(tmp_path / "c.toml", '[servers.dev]\nurl = "https://d.example"\n'))
    assert cfg.profile("dev").token == TOKEN


def test_server_url_uses_token_and_key_flags(tmp_path: Path) -> None:
    cfg = parse_config({}, None)
    prof = cfg.profile("dev-my.custom.server", token=TOKEN, key=str(tmp_path / "k"))
    assert prof.url == "https://dev-my.custom.server"
    assert prof.token == TOKEN and prof.key == tmp_path / "k"


def test_lookup_order_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.toml", '[servers.here]\nurl = "https://here.example"\n')
    other = write(tmp_path / "other.toml", '[servers.there]\nurl = "https://there.example"\n')
    monkeypatch.delenv("LONGTERM_CONFIG", raising=False)
    assert "here" in load_config().servers
    monkeypatch.setenv("LONGTERM_CONFIG", str(other))
    assert "there" in load_config().servers
    assert "here" in load_config(tmp_path / "config.toml").servers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[servers.dev\n", "not valid TOML"),
        ("[limits]\nrest_concurency = 3\n", "unknown setting [limits] rest_concurency"),
        ("[limits]\nrest_concurrency = 0\n", "must be positive"),
        ("[limits]\nsftp_transfers = 'four'\n", "must be a number"),
        ("[limits]\nsftp_block_size = 262144\n", "more than OpenSSH's sftp-server accepts"),
        ('[servers.dev]\nurl = "ftp://x"\n', "is not an http(s) URL"),
        ('[servers.dev]\nurll = "https://x"\n', "unknown key(s) urll"),
        ('[servers.dev]\nurl = "https://x"\ntimezone = "Mars/Base"\n', "unknown timezone"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path).profile("dev")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.toml", "[servers\n")
    cases = [
        (["config", "--config", str(tmp_path / "missing.toml")], "does not exist"),
        (["config", "--config", str(broken)], "not valid TOML"),
        (["config", "--config", str(REPO / "config.toml"), "--server", "nosuch"], "unknown server"),
        (["config", "--no-such-flag"], "unrecognized arguments"),
    ]
    for args, needle in cases:
        result = run_cli(args, cwd=tmp_path)
        assert result.code == 2, (args, result)
        assert needle in result.one_line_error()


def test_config_holding_token_readable_by_others_warns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml", f'[servers.x]\nurl = "https://x.example"\ntoken = "{TOKEN}"\n', 0o644
    )
    result = run_cli(["config", "--config", str(path), "--server", "x", "--json"], cwd=tmp_path)
    assert result.code == 0, result
    assert "chmod 600" in result.err
    data = json.loads(result.out)
    assert data["token"] == "d2f1...7594"
    assert TOKEN not in result.out + result.err
    path.chmod(0o600)
    quiet = run_cli(["config", "--config", str(path), "--server", "x"], cwd=tmp_path)
    assert "chmod" not in quiet.err and TOKEN not in quiet.out + quiet.err


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("dev-my.custom.server", "https://dev-my.custom.server"),
        ("host.example:8443", "https://host.example:8443"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("localhost:8000", "http://localhost:8000"),
        ("[::1]:8000", "http://[::1]:8000"),
        ("http://host.example:8000", "http://host.example:8000"),
        ("https://host.example/", "https://host.example"),
    ],
)
def test_server_address_without_a_scheme_one_rule(server: str, url: str) -> None:
    assert parse_config({}, None).profile(server, token=TOKEN).url == url


def test_server_address_with_a_bad_port_is_one_line() -> None:
    with pytest.raises(ConfigError, match="port that is not a number"):
        parse_config({}, None).profile("host.example:https")


def test_ssh_port_flag_overrides_the_profile(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path / "c.toml", '[servers.x]\nurl = "https://x.example"\nssh_port = 2200\n')
    )
    assert cfg.profile("x").ssh_port == 2200
    assert cfg.profile("x", ssh_port=2222).ssh_port == 2222
    assert cfg.profile("x.example:8443", ssh_port=2222).ssh_port == 2222
    out = run_cli(["config", "--config", str(tmp_path / "c.toml"), "--server=x", "--ssh-port=2222"])
    assert out.code == 0 and "ssh: media@x.example:2222" in out.out
    bad = run_cli(["config", "--server=x.example", "--ssh-port=99999"], cwd=tmp_path)
    assert bad.code == 2 and "not a port number" in bad.one_line_error()


def test_config_is_found_from_a_sub_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "config.toml", '[servers.prod]\nurl = "https://p.example"\n')
    deep = tmp_path / "study" / "user_001"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("LONGTERM_CONFIG", raising=False)
    config = load_config()
    assert config.path == tmp_path / "config.toml"
    assert config.profile("prod").url == "https://p.example"


def test_no_config_names_every_path_and_the_init_command(tmp_path: Path) -> None:
    deep = tmp_path / "study" / "user_001"
    deep.mkdir(parents=True)
    home = tmp_path / "home"
    result = run_cli(["download-results", "--server=prod"], cwd=deep, env={"HOME": str(home)})
    assert result.code == 2
    line = result.one_line_error()
    assert "server profile 'prod' has no url" in line and "longterm config --init" in line
    for looked in (deep, deep.parent, tmp_path, Path("/")):
        assert f"{looked / 'config.toml'}" in line
    assert str(home / ".config/longterm/config.toml") in line


def test_config_init_writes_a_private_commented_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(["config", "--init"], cwd=tmp_path, env={"HOME": str(home)})
    assert result.code == 0, result.err
    path = home / ".config" / "longterm" / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert text.count("\n#") > 10  # commented
    config = load_config(path)
    assert {"dev", "prod"} <= set(config.servers) and config.limits == Limits()
    again = run_cli(["config", "--init"], cwd=tmp_path, env={"HOME": str(home)})
    assert again.code == 2 and "already exists" in again.one_line_error()
    assert path.read_text() == text
    local = run_cli(["config", "--init", "study.toml"], cwd=tmp_path, env={"HOME": str(home)})
    assert local.code == 0 and (tmp_path / "study.toml").stat().st_mode & 0o777 == 0o600
    # a profile without url names the file to edit
    no_url = run_cli(["config", "--config", "study.toml", "--server=dev"], cwd=tmp_path)
    assert "study.toml [servers.dev]" in no_url.one_line_error()


def test_config_prints_values_as_a_person_reads_them(tmp_path: Path) -> None:
    result = run_cli(
        ["config", "--server=https://x.example", "--token", TOKEN],
        cwd=tmp_path,
        env={"HOME": str(tmp_path)},
    )
    assert result.code == 0, result.err
    assert "None" not in result.out and "[" not in result.out and "'" not in result.out
    lines = dict(ln.split(": ", 1) for ln in result.out.splitlines() if ": " in ln)
    assert lines["config"].startswith("no config file found; looked at ")
    assert lines["profiles"] == "dev, prod"
    assert lines["token"] == "d2f1...7594"
