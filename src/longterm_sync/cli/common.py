"""What every command shares: common flags, config/profile resolution, logging, rendering.

A command module under ``longterm_sync.cli`` defines ``NAME``, ``HELP`` (one line),
``DESCRIPTION``, ``EXAMPLES``, ``add_arguments(parser)`` and ``run(ctx) -> int``. It turns flags
into options, calls one pipeline coroutine through :meth:`Context.run_async`, and returns
:meth:`Context.render` of the pipeline's summary. Nothing below the CLI prints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson

from ..config import Config, ServerProfile, load_config, mask_token
from ..errors import EXIT_STATUS_HELP, ExitCode, LongtermError, UsageError
from ..events import ItemDone, Reporter, Tee
from ..lock import locked
from ..runner import run_async
from ..summary import Summary
from .reporters import Echo, JsonLines, Renderer, watching

T = TypeVar("T")
log = logging.getLogger("longterm_sync")

HELP_WIDTH = 100


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit status 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """``-excel_time=FILE`` means ``--excel_time=FILE``: the seed's own example of
        user_activity spells a long flag with one dash, which argparse would read as a
        cluster of short flags."""
        if args is not None:
            args = [self._one_dash_long(arg) for arg in args]
        return super().parse_known_args(args, namespace)

    def _one_dash_long(self, arg: str) -> str:
        if not arg.startswith("-") or arg.startswith("--") or len(arg) < 4:
            return arg
        name = arg.split("=", 1)[0]
        if name not in self._option_string_actions and "-" + name in self._option_string_actions:
            return "-" + arg
        return arg


def can_ask() -> bool:
    """Whether a question can be asked on stdin (a terminal): a passphrase, a confirmation.
    Elsewhere (cron, a pipe) a command that would ask says so in one line instead."""
    return sys.stdin is not None and sys.stdin.isatty()


def version_text() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"longterm-sync {version('longterm-sync')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "longterm-sync (not installed)"


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=version_text())


def help_formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, width=HELP_WIDTH, max_help_position=32)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--server``, ``--token``, ``--key`` as the original scripts spelled them."""
    group = parser.add_argument_group("server")
    group.add_argument(
        "--server",
        nargs="?",
        const="dev",
        default="dev",
        metavar="SERVER",
        help="profile name from config.toml (dev, prod, ...) or the server's address: "
        "https://host[:port] as given; host[:port] without a scheme means https://, or http:// "
        "for a loopback host (localhost, 127.x.x.x) (default: dev)",
    )
    group.add_argument(
        "--token",
        nargs="?",
        default=None,
        metavar="TOKEN",
        help="REST token (40 hex digits); overrides the profile's token; never printed in full",
    )
    group.add_argument(
        "--key",
        nargs="?",
        default=None,
        metavar="KEY",
        help="SSH private key of the media account (default: the profile's key, "
        "or ~/.ssh/media@<host>)",
    )
    group.add_argument(
        "--ssh-port",
        "--ssh_port",
        dest="ssh_port",
        type=_port,
        default=None,
        metavar="PORT",
        help="SSH port of the media account (default: the profile's ssh_port, or 22)",
    )
    group.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config file (default: $LONGTERM_CONFIG, config.toml in this folder or the "
        "nearest parent folder, ~/.config/longterm/config.toml; create one with "
        "longterm config --init)",
    )


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def add_output_arguments(
    parser: argparse.ArgumentParser, *, output_dir: bool = True, lock: bool = True
) -> None:
    """``--output-dir``, ``--json``, ``-v``, ``-q``; and ``--wait`` for commands that write
    into a folder (and so take its lock)."""
    group = parser.add_argument_group("output")
    if output_dir:
        group.add_argument(
            "--output-dir",
            "--output_dir",
            dest="output_dir",
            default=".",
            metavar="DIR",
            help="where files are written (default: the current folder)",
        )
    group.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON summary on stdout"
    )
    group.add_argument(
        "--log-json",
        "--log_json",
        dest="log_json",
        type=Path,
        default=None,
        metavar="FILE",
        help="append the run's events (one JSON object per line: items done and failed, "
        "warnings, then the summary or the error) to FILE, created mode 0600; for cron",
    )
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)"
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="nothing on stdout; warnings, failures and errors on stderr",
    )
    if lock:
        group.add_argument(
            "--wait",
            action="store_true",
            help="when another run is writing into the same folder, wait for it to finish "
            "(default: stop at once, exit status 5)",
        )


class TokenMaskFilter(logging.Filter):
    """Last line of defence: no known token reaches a log record unmasked."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                if secret and secret in message:
                    message = message.replace(secret, mask_token(secret))
            record.msg, record.args = message, None
        return True


MASK_FILTER = TokenMaskFilter()


def setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(MASK_FILTER)
    root = logging.getLogger("longterm_sync")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("asyncssh", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)
    # After a lost SSH connection the transport warns once per late write ("socket.send()
    # raised exception."): noise after the one-line error. Its real errors still show.
    logging.getLogger("asyncio").setLevel(logging.ERROR if verbose < 2 else logging.DEBUG)


@dataclass
class Context:
    """Parsed flags plus lazily loaded config; handed to a command's ``run``."""

    args: argparse.Namespace
    command: str
    stdout: Any = field(default_factory=lambda: sys.stdout)
    log: JsonLines | None = None

    def open_log(self) -> None:
        """Open ``--log-json`` before anything runs, so that even a configuration error is
        recorded; a file that cannot be opened is the one-line local error (exit 4)."""
        path = getattr(self.args, "log_json", None)
        if path is not None and self.log is None:
            self.log = JsonLines(path, self.command)

    def close_log(self) -> None:
        if self.log is not None:
            self.log.close()

    def log_error(self, message: str, exit_code: int) -> None:
        """The error record; a log that cannot take it must not hide the error itself."""
        if self.log is not None:
            with contextlib.suppress(LongtermError):
                self.log.error(message, exit_code)

    @contextlib.contextmanager
    def reporting(
        self,
        bar: Callable[[], Renderer] | None = None,
        *,
        lines_of: Callable[[ItemDone], tuple[list[str], list[str]]] | None = None,
    ) -> Iterator[Reporter]:
        """The reporter a pipeline is given: detail lines echoed, the JSON-lines log when
        asked for, and ``bar()`` when a person is watching; the bar is removed at the end."""
        renderers: list[Renderer] = [Echo(self.echo, self.notice, lines_of)]
        if self.log is not None:
            renderers.append(self.log)
        drawn = bar() if bar is not None and watching(self.args) else None
        if drawn is not None:
            renderers.append(drawn)
        try:
            yield Tee(renderers)
        finally:
            if drawn is not None:
                drawn.close()

    @cached_property
    def config(self) -> Config:
        config = load_config(getattr(self.args, "config", None))
        for warning in config.warnings:
            log.warning("warning: %s", warning)
        return config

    @cached_property
    def profile(self) -> ServerProfile:
        profile = self.config.profile(
            getattr(self.args, "server", None),
            token=getattr(self.args, "token", None),
            key=getattr(self.args, "key", None),
            ssh_port=getattr(self.args, "ssh_port", None),
        )
        if profile.token:
            MASK_FILTER.secrets.add(profile.token)
        return profile

    @cached_property
    def ssh_profile(self) -> ServerProfile:
        """The profile for SSH. A passphrase-protected key is left to ssh-agent when one runs;
        otherwise, on a terminal, its passphrase is asked for here, once, before anything
        runs (not echoed, kept in memory only); elsewhere connecting gives one line."""
        from ..media.sftp import agent_socket, key_is_encrypted, load_client_key

        profile = self.profile
        if (
            can_ask()
            and not agent_socket()
            and profile.key.is_file()
            and key_is_encrypted(profile.key)
        ):
            passphrase = getpass.getpass(f"Passphrase for SSH key {profile.key}: ")
            profile = dataclasses.replace(profile, key_passphrase=passphrase)
        if profile.key.is_file():  # a wrong or locked key: one line before anything runs
            load_client_key(profile)  # (a missing one is the pipeline's to report, if needed)
        return profile

    @property
    def output_dir(self) -> Path:
        return Path(getattr(self.args, "output_dir", ".") or ".")

    def run_async(self, coro: Coroutine[Any, Any, T]) -> T:
        return run_async(coro)

    def run_writer(
        self, pipeline: Callable[..., Coroutine[Any, Any, Summary]], options: Any
    ) -> Summary:
        """The body of a command that writes into ``--output-dir``: that folder locked, the
        pipeline given the profile, the limits and the reporter, and run."""
        with self.locked([self.output_dir]), self.reporting() as reporter:
            return self.run_async(
                pipeline(self.profile, self.config.limits, options, reporter=reporter)
            )

    @contextlib.contextmanager
    def locked(self, folders: Sequence[Path], *, deep: Sequence[Path] = ()) -> Iterator[None]:
        """Hold the destination locks of ``folders`` (``deep`` ones cleaned recursively of
        killed runs' temporary files); a busy folder stops the run unless ``--wait``."""
        with locked(folders, wait=bool(getattr(self.args, "wait", False)), recursive=deep):
            yield

    def echo(self, text: str = "") -> None:
        """Human output on stdout, suppressed by --json and --quiet."""
        if not getattr(self.args, "json", False) and not getattr(self.args, "quiet", False):
            print(text, file=self.stdout)

    def notice(self, text: str) -> None:
        """A line -q must not swallow (a warning, a skipped row): stdout as part of the human
        output, stderr with -q, nothing with --json (the summary carries it)."""
        if getattr(self.args, "json", False):
            return
        print(text, file=sys.stderr if getattr(self.args, "quiet", False) else self.stdout)

    def render(self, summary: Summary) -> int:
        if self.log is not None:
            self.log.summary(summary)
        if getattr(self.args, "json", False):
            self.stdout.write(
                orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
            )
        elif getattr(self.args, "quiet", False):
            # -q: nothing on stdout; what still needs reading (warnings, the failure list)
            # goes to stderr with the errors, so a script can keep stdout clean
            for line in summary.lines():
                if line.startswith(("  ", "warning")) or " failed:" in f" {line}":
                    print(line, file=sys.stderr)
        else:
            for line in summary.lines():
                print(line, file=self.stdout)
        return int(summary.exit_code)


def pick_path(positional: str | None, option: str | None, flag: str, default: str) -> Path:
    """A folder the original scripts took as a positional and as a flag: either, not both."""
    if positional is not None and option is not None and Path(positional) != Path(option):
        raise UsageError(f"{flag} given twice ({positional!r} and {option!r})")
    return Path(option or positional or default)


def fail_usage(message: str, hint: str | None = None) -> NoReturn:
    raise UsageError(message, hint=hint)


def epilog(examples: str = "") -> str:
    text = EXIT_STATUS_HELP
    if examples:
        text = "EXAMPLES\n" + examples.rstrip() + "\n\n" + text
    return text
