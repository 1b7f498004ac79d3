"""Host key checking like OpenSSH's ``StrictHostKeyChecking``, with one-line errors.

asyncssh only says "Host key is not trusted". The experimenter needs to know which of the
two very different cases happened: a host never seen before (show its SHA256 fingerprint
and how to trust it; ``--accept-new-host-key`` records it as OpenSSH's ``accept-new``
does), or a host whose key changed (a hard error: possibly a different machine).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from ..atomic import write_bytes_atomic
from ..errors import HostKeyError

log = logging.getLogger("longterm_sync.media.hostkeys")


def known_hosts_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


@dataclass
class HostKeyPolicy:
    """Decides on the server's key; remembers what it saw so a refusal can be explained."""

    known_hosts: Path
    host: str
    port: int
    accept_new: bool = False
    seen_key: asyncssh.SSHKey | None = None
    state: str = ""  # "", "unknown", "changed", "accepted"
    _matched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _load(self) -> asyncssh.SSHKnownHosts | None:
        try:
            text = self.known_hosts.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise HostKeyError(
                f"cannot read known_hosts {self.known_hosts}: {exc.strerror}"
            ) from exc
        try:
            return asyncssh.import_known_hosts(text)
        except (ValueError, asyncssh.Error) as exc:
            raise HostKeyError(f"known_hosts {self.known_hosts} is not valid: {exc}") from exc

    def trusted(self, host: str, addr: str, port: int | None) -> tuple[Any, ...]:
        """The ``known_hosts`` callable asyncssh asks for trusted keys."""
        known = self._load()
        if known is None:
            return ((), (), ())
        # Match under the name the user gave, which is what the file records.
        result = known.match(self.host, addr, self.port if self.port != 22 else None)
        self._matched = len(result[0])
        return result

    def validate(self, key: asyncssh.SSHKey) -> bool:
        """Called by asyncssh only for a key that is not in known_hosts."""
        self.seen_key = key
        if self._matched:
            self.state = "changed"
            return False
        if not self.accept_new:
            self.state = "unknown"
            return False
        self._record(key)
        self.state = "accepted"
        return True

    def _record(self, key: asyncssh.SSHKey) -> None:
        line = (
            f"{known_hosts_pattern(self.host, self.port)} "
            f"{key.export_public_key('openssh').decode().split()[0]} "
            f"{key.export_public_key('openssh').decode().split()[1]}\n"
        )
        with self._lock:
            try:
                old = self.known_hosts.read_bytes()
            except FileNotFoundError:
                old = b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            write_bytes_atomic(self.known_hosts, old + line.encode())
        log.warning(
            "added %s (%s) to %s",
            known_hosts_pattern(self.host, self.port),
            fingerprint(key),
            self.known_hosts,
        )

    def error(self) -> HostKeyError | None:
        """The one-line error for a refused key, or None when the key was not the cause."""
        if self.seen_key is None or self.state not in ("unknown", "changed"):
            return None
        where = known_hosts_pattern(self.host, self.port)
        fp = fingerprint(self.seen_key)
        if self.state == "changed":
            return HostKeyError(
                f"host key of {where} has CHANGED (now {fp}); refusing to connect",
                hint=f"if the server was really reinstalled, remove its old line from "
                f"{self.known_hosts} (ssh-keygen -R '{where}' -f {self.known_hosts})",
            )
        return HostKeyError(
            f"unknown host key for {where}: {fp}",
            hint=f"check the fingerprint with the server's admin, then re-run with "
            f"--accept-new-host-key to record it in {self.known_hosts}",
        )


def fingerprint(key: asyncssh.SSHKey) -> str:
    return str(key.get_fingerprint("sha256"))


class _Client(asyncssh.SSHClient):
    def __init__(self, policy: HostKeyPolicy) -> None:
        self._policy = policy

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return self._policy.validate(key)


def client_factory(policy: HostKeyPolicy) -> Any:
    return lambda: _Client(policy)
