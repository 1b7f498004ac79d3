"""Errors of longterm_sync, the exit status each maps to, and the one failure policy.

Errors are classified where they happen, so that one place (the CLI) can turn them into a
one-line message and a documented exit status, the engine can decide what to retry, and one
loop (:func:`longterm_sync.workers.run_items`) can decide what an error stops. The tree, with
each class's :class:`Scope` (``I`` = one item fails, ``J`` = the job stops, ``F`` = fatal)::

    Exception
    ├── Retryable                 I  inside a retry loop: try again (retry.py); never escapes
    ├── Exhausted                 I  every attempt failed (retry.py); the client wraps it into
    │                                a TransientError or, for a connect failure, ConnectError
    ├── FileFailed                I  one file could not be transferred or verified (media)
    └── LongtermError             J  base; ``exit_code`` and a one-line ``str()``
        ├── UsageError            F  exit 2: bad flags, config, input files; nothing was sent
        │   ├── ConfigError       F  config file missing, unparsable, unknown profile, no token
        │   ├── SelectionError    F  malformed --user_time / --external_id_time / --excel_time
        │   └── InputFileError    F  a schedule or other input file that cannot be used
        ├── RemoteError           J  exit 3: the run could not go on against the server
        │   ├── ConnectError      J  unreachable host, refused connection, DNS failure
        │   ├── AuthError         J  401: the token was rejected (names the server)
        │   ├── RouteError        J  404: the route does not exist (wrong --server?)
        │   ├── HostKeyError      J  unknown or changed SSH host key
        │   └── ProtocolError     I  an answer that is not what the platform sends
        │       ├── HttpStatusError   I  a status the request cannot use (api.py)
        │       └── ResponseTooLarge  I  over [limits] max_response_mb (api.py; windows split)
        ├── TransientError        I  5xx, reset, timeout after the client's retries
        ├── LocalIOError          J  exit 4: the local disk refused (unwritable folder, disk full)
        └── DestinationBusy       J  exit 5: another run holds the destination's lock (lock.py)

Scopes, and why three: an ``ITEM`` error is about one participant's answer or one file, so
the run records it (summary and an ``ItemFailed`` event), goes on, and exits ``PARTIAL`` (1).
A ``JOB`` error means the same failure would hit every other item (server unreachable, token
rejected, disk full): the job is cancelled and the error reaches the CLI as one line; a
composite job (the backup) records it as the failure of that one child job and keeps the
others. A ``FATAL`` error is a configuration no job can run with: it stops everything. Any
exception that is not ours (a bug) is treated as fatal and keeps its traceback.
"""

from __future__ import annotations

from enum import Enum, IntEnum


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


class Scope(Enum):
    """What an error stops (see the module docstring)."""

    ITEM = "item"
    JOB = "job"
    FATAL = "fatal"


def scope_of(exc: BaseException) -> Scope:
    """The scope of ``exc``; anything without one (a bug, a cancellation) is fatal."""
    scope = getattr(type(exc), "scope", None)
    return scope if isinstance(scope, Scope) else Scope.FATAL


class Retryable(Exception):
    """Raised inside an attempt to ask for another one; ``cause`` says why in one line."""

    scope = Scope.ITEM

    def __init__(self, cause: str, *, connect: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.connect = connect


class Exhausted(Exception):
    """Every attempt failed; ``last`` is the last attempt's reason."""

    scope = Scope.ITEM

    def __init__(self, attempts: int, last: Retryable) -> None:
        super().__init__(attempts, last)
        self.attempts = attempts
        self.last = last

    def __str__(self) -> str:
        return f"{self.last.cause} (after {self.attempts} attempts)"


class FileFailed(Exception):
    """One file could not be transferred or verified; the run goes on with the others."""

    scope = Scope.ITEM


class LongtermError(Exception):
    """Base of every error this package raises on purpose; ``str()`` is one line."""

    exit_code: ExitCode = ExitCode.PARTIAL
    scope: Scope = Scope.JOB

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class UsageError(LongtermError):
    exit_code = ExitCode.USAGE
    scope = Scope.FATAL


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
    scope = Scope.ITEM


class TransientError(LongtermError):
    """A failure worth retrying (5xx, connection reset, timeout)."""

    exit_code = ExitCode.REMOTE
    scope = Scope.ITEM


class LocalIOError(LongtermError):
    exit_code = ExitCode.LOCAL_IO
