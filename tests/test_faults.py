"""The REST engine under faults: injected errors and resets, bad servers, bad disks, Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from clitools import REPO, Result, run_cli
from fixtures_sandbox import SandboxInfo
from rest_helpers import FAST_RETRIES, NO_RETRIES, config_with_limits, download, tree

FAULT_STUDY = (
    "--users", "4", "--days", "6", "--samples", "100", "--seed", "7", "--video-mb", "0",
)  # fmt: skip


def test_injected_errors_and_resets_change_nothing(sandbox_factory: Any, tmp_path: Path) -> None:
    clean = sandbox_factory(*FAULT_STUDY)
    config = config_with_limits(clean, tmp_path, window_days=2, **FAST_RETRIES)
    expected = tmp_path / "clean"
    assert download(clean, expected, "-q", config=config).code == 0
    clean.stop()
    # the same data dir (state survives a restart), now with faults on GETs
    faulty = sandbox_factory(
        "--error-rate", "0.25", "--reset-rate", "0.25", data_dir=clean.data_dir
    )
    config = config_with_limits(faulty, tmp_path, window_days=2, **FAST_RETRIES)
    got = tmp_path / "faulty"
    result = download(faulty, got, "--json", config=config)
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["details"]["retried"] > 0, "faults were injected, so some GETs were retried"
    assert tree(got) == tree(expected)
    assert len(tree(got)) == 2 + 2 * 4


def test_poison_participant_fails_alone(sandbox_factory: Any, tmp_path: Path) -> None:
    info = sandbox_factory(*FAULT_STUDY, "--poison", "1")
    config = config_with_limits(info, tmp_path, retries=1, retry_base_delay=0.01)
    out = tmp_path / "out"
    result = download(info, out, "--json", config=config)
    assert result.code == 1, result.err
    summary = json.loads(result.out)
    assert len(summary["failures"]) == 1
    failed = summary["failures"][0]
    poison = failed["item"].removeprefix("participant ")
    assert "server error 500" in failed["reason"]
    assert "window" in failed["reason"]  # which window failed, with its dates
    names = set(tree(out))
    assert f"results_{poison}.json" not in names
    assert summary["counts"]["participants"] == 3
    assert "results_all.json" in names and "results_feedback_all.json" in names
    assert not [n for n in names if n.endswith(".partial")]


def test_wrong_token_names_the_server(sandbox: SandboxInfo, tmp_path: Path) -> None:
    token = "0123456789abcdef0123456789abcdef01234567"
    result = download(sandbox, tmp_path, "-q", f"--token={token}")
    assert result.code == 3
    line = result.one_line_error()
    assert "rejected by sandbox" in line and sandbox.url in line and "Invalid token" in line
    assert token not in result.err + result.out
    assert list(tmp_path.iterdir()) == []


def test_wrong_url_is_a_missing_route(sandbox: SandboxInfo, tmp_path: Path) -> None:
    wrong = f"--server={sandbox.url}/elsewhere"
    result = download(sandbox, tmp_path, "-q", wrong, f"--token={sandbox.token}")
    assert result.code == 3
    line = result.one_line_error()
    assert "404" in line and "wrong --server" in line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "config.toml"
    limits = "\n".join(f"{k} = {v!r}" for k, v in NO_RETRIES.items())
    config.write_text(f'[servers.gone]\nurl = "{url}"\ntoken = "{"a" * 40}"\n[limits]\n{limits}\n')
    config.chmod(0o600)
    result = download_to(config, "gone", tmp_path / "out")
    assert result.code == 3
    line = result.one_line_error()
    assert "cannot reach" in line and url in line


class HtmlHandler(BaseHTTPRequestHandler):
    """A web server that is not the platform: every path is an HTML page.

    Under ``/moved`` it redirects like an nginx that forces https.
    """

    def do_GET(self) -> None:
        body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
        if self.path.startswith("/moved"):
            self.send_response(301)
            self.send_header("Location", "https://platform.example" + self.path)
        else:
            self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def download_to(config: Path, server: str, out: Path, *args: str) -> Result:
    common = ["--config", str(config), "--server", server, "-q", "--output-dir", str(out)]
    return run_cli(["download-results", *common, *args])


def error_from(url: str, tmp_path: Path) -> str:
    """download-results against a server that is not the platform: exit 3, one line."""
    config = tmp_path / "config.toml"
    config.write_text(f'[servers.web]\nurl = "{url}"\ntoken = "{"b" * 40}"\n')
    config.chmod(0o600)
    result = download_to(config, "web", tmp_path / "out")
    assert result.code == 3
    return result.one_line_error()


def test_server_answering_html(html_server: str, tmp_path: Path) -> None:
    line = error_from(html_server, tmp_path)
    assert "text/html instead of JSON" in line and "--server" in line


def test_redirect_is_not_followed(html_server: str, tmp_path: Path) -> None:
    line = error_from(f"{html_server}/moved", tmp_path)
    assert "redirects" in line and "https://platform.example/moved/api/users/" in line


def test_unwritable_output_folder(sandbox: SandboxInfo, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = download(sandbox, blocker / "out", "-q")
    assert result.code == 4
    assert "cannot write" in result.one_line_error()


def test_ctrl_c_leaves_no_partial_file(sandbox_factory: Any, tmp_path: Path) -> None:
    info = sandbox_factory(*FAULT_STUDY, "--latency-ms", "400")
    config = config_with_limits(info, tmp_path, window_days=1, rest_concurrency=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "longterm_sync", "download-results", "--config", str(config)]
    cmd += ["--server", "sandbox", "--output-dir", str(out), "-q"]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job (CI) inherits SIGINT ignored; a user's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    # wait until the run is writing (a temporary file exists), then interrupt it
    while time.monotonic() < deadline and not any(
        p.name.startswith(".results_") for p in _files(out)
    ):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    names = [p.name for p in _files(out)]
    assert not [n for n in names if n.startswith(".") or n.endswith(".partial")]
    assert "results_all.json" not in names


def _files(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []
