"""Errors of longterm_sync and the exit status each one maps to.

Errors are classified where they happen, so that one place (the CLI) can turn them into a
one-line message and a documented exit status, and the engine can decide what to retry::

    LongtermError                 base; ``exit_code`` and a one-line ``str()``
    ├── UsageError                exit 2: bad flags, config, input files; nothing was sent
    │   ├── ConfigError           config file missing, unparsable, unknown profile, no token
    │   ├── SelectionError        malformed --user_time / --external_id_time / --excel_time
    │   └── InputFileError        a schedule or other input file that cannot be used
    ├── RemoteError               exit 3: the run could not go on against the server
    │   ├── ConnectError          unreachable host, refused connection, DNS failure
    │   ├── AuthError             401: the token was rejected (names the server)
    │   ├── RouteError            404: the route does not exist (wrong --server?)
    │   ├── HostKeyError          unknown or changed SSH host key
    │   └── ProtocolError         an answer that is not what the platform sends
    ├── TransientError            retryable: 5xx, reset, timeout (never escapes a retry loop
    │                             without being wrapped into a failure of one item)
    ├── LocalIOError              exit 4: the local disk refused (unwritable folder, disk full)
    └── DestinationBusy           exit 5: another run holds the destination's lock (lock.py)

Failures of single items (one participant, one file) are not exceptions that stop a run:
pipelines record them in their summary and the CLI exits with ``PARTIAL`` (1).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit statuses shared by every command (see EXIT STATUS in ``--help``)."""

    OK = 0
    PARTIAL = 1  # the run finished but some participants or files failed
    USAGE = 2  # bad flags, config or input; nothing was changed
    REMOTE = 3  # the server or SSH host refused or could not be reached
    LOCAL_IO = 4  # the local disk refused (permissions, disk full)
    BUSY = 5  # another run holds the destination folder's lock
    INTERRUPTED = 130  # Ctrl-C


EXIT_STATUS_HELP = """\
EXIT STATUS
  0    everything requested was done
  1    the run finished but some participants or files failed (listed at the end)
  2    bad flags, config or input file; nothing was sent or written
  3    the server or SSH host could not be reached or refused (token, route, host key)
  4    a local file could not be written (permissions, disk full)
  5    the destination folder is in use by another run (its pid is named); --wait waits
  130  interrupted (Ctrl-C; 143 SIGTERM, 129 SIGHUP); no partial file is left under a final name
  141  the output pipe was closed (e.g. `| head`); the run stopped there
"""


class LongtermError(Exception):
    """Base of every error this package raises on purpose; ``str()`` is one line."""

    exit_code: ExitCode = ExitCode.PARTIAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class UsageError(LongtermError):
    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    pass


class SelectionError(UsageError):
    pass


class InputFileError(UsageError):
    pass


class RemoteError(LongtermError):
    exit_code = ExitCode.REMOTE


class ConnectError(RemoteError):
    pass


class AuthError(RemoteError):
    pass


class RouteError(RemoteError):
    pass


class HostKeyError(RemoteError):
    pass


class ProtocolError(RemoteError):
    pass


class TransientError(LongtermError):
    """A failure worth retrying (5xx, connection reset, timeout)."""

    exit_code = ExitCode.REMOTE


class LocalIOError(LongtermError):
    exit_code = ExitCode.LOCAL_IO
