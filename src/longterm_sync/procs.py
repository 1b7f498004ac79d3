"""Helper processes: a job on stdin, JSON lines back, dying with their parent.

One asyncio process is bounded by its event loop (SSH packet handling, ffmpeg's pipes, pandas
are Python or hold the GIL), so a share of a big job goes to another Python process. The
design, first built for the media download (:mod:`longterm_sync.media.worker`) and general
here so that the next kind of work (ffmpeg jobs) reuses it:

- the parent sends the job as one JSON document on the child's stdin (a pipe, never argv or
  the environment: no secret shows in ``ps``);
- the child answers one JSON object per line on stdout: its own messages, its log records
  (relayed into the parent's logging, so nothing is printed behind the CLI's back), and at
  most one ``fatal`` error, raised in the parent as the same :mod:`longterm_sync.errors` class;
- the child asks Linux to kill it when the parent dies (``PR_SET_PDEATHSIG``), and the
  parent kills it when its coroutine is cancelled: a ``kill -9`` or Ctrl-C stops every write.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from . import errors
from .errors import LongtermError

log = logging.getLogger("longterm_sync.procs")

Message = dict[str, Any]
PR_SET_PDEATHSIG = 1
LINE_LIMIT = 1 << 20  # longest line a child may send


def child_command(module: str) -> list[str]:
    """How a child runs ``module.main()``. Not ``-m``: a package that imports the module
    would make runpy warn about a second copy."""
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


async def run_child(
    module: str, job: Message, on_message: Callable[[Message], None], *, what: str
) -> None:
    """Run ``module.main()`` in a child process on ``job``; feed its messages to
    ``on_message``. A fatal error in the child is raised here as the same error class;
    cancelling this coroutine kills the child."""
    proc = await asyncio.create_subprocess_exec(
        *child_command(module),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=LINE_LIMIT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    fatal: LongtermError | None = None
    try:
        proc.stdin.write(orjson.dumps({**job, "parent": os.getpid()}))
        await proc.stdin.drain()
        proc.stdin.close()
        while line := await proc.stdout.readline():
            message: Message = orjson.loads(line)
            if "fatal" in message:
                cls = getattr(errors, str(message["fatal"]), LongtermError)
                if not (isinstance(cls, type) and issubclass(cls, LongtermError)):
                    cls = LongtermError
                fatal = cls(str(message["message"]), hint=message.get("hint"))
            elif "log" in message:
                log.log(int(message["log"]), "%s", message["message"])
            else:
                on_message(message)
        status = await proc.wait()
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if fatal is not None:
        raise fatal
    if status != 0:
        raise errors.LocalIOError(f"a {what} process exited with status {status}")


# ------------------------------------------------------------------ inside the child


def emit(message: Message) -> None:
    """One message to the parent (a whole line, flushed)."""
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def emit_fatal(exc: LongtermError) -> None:
    emit({"fatal": type(exc).__name__, "message": exc.message, "hint": exc.hint})


class _RelayHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        emit({"log": record.levelno, "message": record.getMessage()})


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies: a helper whose parent was
    killed (``kill -9``) must not go on writing into the destination."""
    with contextlib.suppress(Exception):  # not Linux: the parent's kill() still applies
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def child_main(serve: Callable[[Message], Coroutine[Any, Any, None]], *, what: str) -> int:
    """The body of a child's ``main()``: relay logging, read the job, die with the parent,
    run ``serve(job)`` on an event loop (:mod:`longterm_sync.runner`). An error of ours is
    the one ``fatal`` message; a bug is one too, never a traceback on the parent's stderr."""
    root = logging.getLogger("longterm_sync")
    root.handlers[:] = [_RelayHandler()]
    root.setLevel(logging.INFO)
    root.propagate = False
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    job = orjson.loads(sys.stdin.buffer.read())
    die_with_parent(int(job.get("parent", 0)))
    from .runner import run_async

    try:
        run_async(serve(job))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM reaches the helpers too: the parent reports
        return 130
    except LongtermError as exc:
        emit_fatal(exc)
    except Exception as exc:  # a bug: still one line for the parent, not a traceback
        emit({"fatal": "LongtermError", "message": f"{what} failed: {exc!r}"})
    return 0
