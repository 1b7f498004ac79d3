"""Run the sandbox platform: REST + SSH on loopback, a synthetic study, a ready file.

``async with Sandbox(options) as info:`` is the in-process API (the demo, benchmarks);
``longterm sandbox`` wraps it and waits for SIGINT/SIGTERM. State lives in ``data_dir`` and
survives restarts: a data dir that already holds a study is never filled twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ..atomic import write_text_atomic
from ..errors import UsageError
from ..summary import Summary
from ..timeutil import WARSAW, today_in
from .fill import add_day, fill_platform
from .rest import Faults, PlatformApp
from .store import OPERATOR, Store
from .synth import Study, StudyParams

log = logging.getLogger("longterm_sync.sandbox")

PROFILE = "sandbox"
MAX_FAULT_RATE = 0.5
SHUTDOWN_SECONDS = 2.0  # in-flight answers get this long after SIGTERM, then are dropped


@dataclass(frozen=True, kw_only=True)
class SandboxOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    ssh_port: int = 0
    ssh: bool = True
    users: int = 0
    days: int = 8
    samples: int = 1800
    video_mb: float = 1.0
    seed: int = 1
    today: date | None = None
    orphans: int = 1
    poison: int = 0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    ready_file: Path | None = None

    def validate(self) -> SandboxOptions:
        for name in ("error_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_FAULT_RATE:
                raise UsageError(
                    f"--{name.replace('_', '-')} must be between 0 and {MAX_FAULT_RATE}, "
                    f"got {value}"
                )
        if self.error_rate + self.reset_rate > MAX_FAULT_RATE:
            raise UsageError(
                f"--error-rate plus --reset-rate must not exceed {MAX_FAULT_RATE}",
                hint="a sandbox that fails most requests tests nothing",
            )
        if self.latency_ms < 0:
            raise UsageError(f"--latency-ms must not be negative, got {self.latency_ms}")
        for name in ("users", "days", "samples", "orphans", "poison"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name} must not be negative")
        if self.days < 1:
            raise UsageError("--days must be at least 1")
        if self.poison > self.users:
            raise UsageError(f"--poison {self.poison} is more than --users {self.users}")
        if self.video_mb < 0 or self.video_mb > 4096:
            raise UsageError(f"--video-mb must be between 0 and 4096, got {self.video_mb}")
        for name in ("port", "ssh_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 65535")
        return self

    def study_params(self, today: date) -> StudyParams:
        return StudyParams(
            users=self.users,
            days=self.days,
            samples=self.samples,
            video_mb=self.video_mb,
            seed=self.seed,
            today=today,
            orphans=self.orphans,
            poison=self.poison,
        )


@dataclass(frozen=True)
class ReadyInfo:
    """What a client needs: the ready file's fields (the token is the operator's)."""

    url: str
    token: str = field(repr=False)
    ssh_host: str
    ssh_port: int
    ssh_user: str
    key: str
    known_hosts: str
    media_dir: str
    config: str
    data_dir: str
    salt: str = field(repr=False)
    study: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _prepare_data_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"data dir {path} is not writable: {exc.strerror or exc}",
            hint="pass a --data-dir you can write to",
        ) from exc
    return path.absolute()


def _lock_data_dir(data_dir: Path) -> int:
    """One sandbox per data dir: a second one would serve and fill the same database."""
    lock = data_dir / "sandbox.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise UsageError(
            f"data dir {data_dir} is in use by another sandbox (pid {holder})",
            hint="stop it or pass another --data-dir",
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


def _bind(host: str, port: int, what: str) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(
                f"{what} port {port} on {host} is already in use",
                hint="pick another port or 0 for a free one",
            ) from exc
        raise UsageError(f"cannot listen on {host}:{port} ({what}): {exc}") from exc
    return sock


class Sandbox:
    """The sandbox platform for the duration of an ``async with`` block."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options.validate()
        self.store: Store | None = None
        self.app: PlatformApp | None = None
        self.runner: web.AppRunner | None = None
        self.ssh: Any = None
        self.info: ReadyInfo | None = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        where = self.info.url if self.info else "not started"
        return f"Sandbox({where}, data_dir={self.options.data_dir})"

    async def __aenter__(self) -> ReadyInfo:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> ReadyInfo:
        opts = self.options
        data_dir = await asyncio.to_thread(_prepare_data_dir, Path(opts.data_dir))
        self._lock_fd = await asyncio.to_thread(_lock_data_dir, data_dir)
        self.store = Store(data_dir / "platform.sqlite3")
        try:
            await self.store.open()
        except Exception as exc:
            raise UsageError(f"cannot open {data_dir / 'platform.sqlite3'}: {exc}") from exc
        await self._refuse_interrupted_fill(data_dir)
        http_sock = _bind(opts.host, opts.port, "REST")
        self.app = PlatformApp(
            self.store,
            today=opts.today,
            faults=Faults(opts.latency_ms, opts.error_rate, opts.reset_rate, opts.seed),
        )
        self.runner = web.AppRunner(
            self.app.make_app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        await self.runner.setup()
        site = web.SockSite(self.runner, http_sock)
        await site.start()
        port = http_sock.getsockname()[1]
        host = opts.host if ":" not in opts.host else f"[{opts.host}]"
        url = f"http://{host}:{port}"
        ssh_fields = await self._start_ssh(data_dir)
        store = self.store
        token = await store.call(store.token_for, OPERATOR)
        study = await self._fill_once(url, token, data_dir)
        salt = study.get("salt", "") if study else ""
        config = data_dir / "config.toml"
        self.info = ReadyInfo(
            url=url,
            token=token,
            config=str(config),
            data_dir=str(data_dir),
            salt=salt,
            study=study,
            **ssh_fields,
        )
        await asyncio.to_thread(self._write_files, self.info, opts.ready_file)
        log.info("sandbox ready at %s", url)
        return self.info

    async def _start_ssh(self, data_dir: Path) -> dict[str, Any]:
        media_dir = "media/videos"
        empty = {
            "ssh_host": "",
            "ssh_port": 0,
            "ssh_user": "media",
            "key": "",
            "known_hosts": "",
            "media_dir": media_dir,
        }
        if not self.options.ssh:
            (data_dir / "home" / media_dir).mkdir(parents=True, exist_ok=True)
            return empty
        try:
            from .ssh import start_ssh_server
        except ImportError as exc:  # the SSH side is optional while it is being written
            log.warning("sandbox SSH server unavailable (%s); REST only", exc)
            (data_dir / "home" / media_dir).mkdir(parents=True, exist_ok=True)
            return empty
        try:
            self.ssh = await start_ssh_server(data_dir, self.options.host, self.options.ssh_port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(
                    f"SSH port {self.options.ssh_port} on {self.options.host} is already in use",
                    hint="pick another --ssh-port or 0 for a free one",
                ) from exc
            raise UsageError(f"cannot start the sandbox SSH server: {exc}") from exc
        ep = self.ssh
        return {
            "ssh_host": ep.host,
            "ssh_port": ep.port,
            "ssh_user": ep.user,
            "key": str(ep.client_key),
            "known_hosts": str(ep.known_hosts),
            "media_dir": ep.media_dir,
        }

    async def _refuse_interrupted_fill(self, data_dir: Path) -> None:
        """A half-filled study cannot be completed or told apart from a finished one."""
        store = self.store
        assert store is not None
        filling = await store.call(store.get_meta, "filling")
        if filling is not None and await store.call(store.get_meta, "study") is None:
            raise UsageError(
                f"data dir {data_dir} holds a study whose filling was interrupted",
                hint="remove the data dir or pass a fresh --data-dir",
            )

    async def _fill_once(self, url: str, token: str, data_dir: Path) -> dict[str, Any] | None:
        """Fill on the first start only; later starts report the study already there."""
        store = self.store
        assert store is not None
        saved = await store.call(store.get_meta, "study")
        if saved is not None:
            study: dict[str, Any] = json.loads(saved)
            if self.options.users and study.get("users") != self.options.users:
                log.warning(
                    "data dir already holds a study of %s users; --users etc. ignored",
                    study.get("users"),
                )
            return study
        opts = self.options
        if not opts.users:
            return None
        params = opts.study_params(opts.today or today_in(WARSAW))
        await store.call(store.set_meta, "filling", json.dumps(params.to_dict()))
        synth = Study(params)
        media_root = data_dir / "home" / "media" / "videos"
        await asyncio.to_thread(synth.write_videos, media_root)
        await asyncio.to_thread(synth.write_experimenter_files, data_dir / "study")
        summary = await fill_platform(url, token, synth)
        log.info("%s", summary.lines()[0])
        study = {**params.to_dict(), "salt": params.salt, "counts": summary.counts}
        await store.call(store.set_meta, "study", json.dumps(study))
        return study

    async def add_day(self) -> tuple[date, Summary]:
        """Grow the study by one day: every participant posts the day after the last one
        (the first call: the day after the study's ``today``). For the backup demo/bench."""
        store, info = self.store, self.info
        if store is None or info is None or not info.study:
            raise UsageError("the sandbox holds no synthetic study to add a day to")
        params = StudyParams(
            **{k: v for k, v in info.study.items() if k in StudyParams.__dataclass_fields__}
            | {"today": date.fromisoformat(info.study["today"])}
        )
        added = int(await store.call(store.get_meta, "days_added") or 0) + 1
        day = params.today + timedelta(days=added)
        summary = await add_day(info.url, Study(params), day)
        await store.call(store.set_meta, "days_added", str(added))
        return day, summary

    @staticmethod
    def _write_files(info: ReadyInfo, ready_file: Path | None) -> None:
        lines = [
            "# Written by `longterm sandbox`: the sandbox platform and its operator token.",
            f"[servers.{PROFILE}]",
            f"url = {_toml_str(info.url)}",
            f"token = {_toml_str(info.token)}",
        ]
        if info.ssh_port:
            lines += [
                f"ssh_host = {_toml_str(info.ssh_host)}",
                f"ssh_port = {info.ssh_port}",
                f"ssh_user = {_toml_str(info.ssh_user)}",
                f"key = {_toml_str(info.key)}",
                f"known_hosts = {_toml_str(info.known_hosts)}",
            ]
        lines += [
            f"media_dir = {_toml_str(info.media_dir)}",
            f"salt = {_toml_str(info.salt)}",
            'timezone = "Europe/Warsaw"',
            "",
        ]
        config = Path(info.config)
        write_text_atomic(config, "\n".join(lines))
        config.chmod(0o600)
        if ready_file is not None:
            data = {k: v for k, v in info.to_dict().items() if k != "study"}
            write_text_atomic(ready_file, json.dumps(data, indent=2) + "\n")
            ready_file.chmod(0o600)

    async def stop(self) -> None:
        if self.ssh is not None:
            with contextlib.suppress(Exception):
                self.ssh.close()
                await self.ssh.wait_closed()
            self.ssh = None
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None


async def serve(
    options: SandboxOptions, on_ready: Callable[[ReadyInfo], None] | None = None
) -> int:
    """Run until SIGINT or SIGTERM; ``on_ready(info)`` is called once listening.

    A signal during start-up (a long fill) stops at once; an interrupted fill is then
    refused on the next start instead of being silently doubled.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sandbox = Sandbox(options)
    try:
        starting = asyncio.create_task(sandbox.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.warning("interrupted while starting; stopping")
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 0
        stopping.cancel()
        info = starting.result()
        if on_ready is not None:
            on_ready(info)
        await stop.wait()
    finally:
        await sandbox.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
