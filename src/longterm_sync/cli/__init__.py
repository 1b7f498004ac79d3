"""The ``longterm`` command: one subcommand per documented script.

Command modules are discovered in this package: any module that defines ``NAME`` and ``run``
is a subcommand, so adding a script is adding one module (plus its ``scripts/`` shim).
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..errors import ExitCode, LongtermError
from ..runner import Terminated, terminate_as_interrupt
from .common import (
    Context,
    OneLineParser,
    add_version_argument,
    epilog,
    help_formatter,
    setup_logging,
)

log = logging.getLogger("longterm_sync")

_NOT_COMMANDS = {"analysis_flags", "common", "docs", "reporters", "selection"}


def command_modules(only: str | None = None) -> list[ModuleType]:
    """Every command module, or with ``only`` just the one for that command when its module
    is named after it (``download-results`` -> ``download_results``): a run then imports one
    command's dependencies, not all of them (SSH, pandas, the sandbox), and starts faster."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    if only is not None:
        guess = only.replace("-", "_")
        if guess in names and guess not in _NOT_COMMANDS and not guess.startswith("_"):
            mod = importlib.import_module(f"{__name__}.{guess}")
            if getattr(mod, "NAME", None) == only and hasattr(mod, "run"):
                return [mod]
    mods = []
    for name in names:
        if name in _NOT_COMMANDS or name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 50), m.NAME))


def build_parser(
    prog: str = "longterm", only: str | None = None
) -> tuple[OneLineParser, dict[str, ModuleType]]:
    parser = OneLineParser(
        prog=prog,
        description="Experimenter's toolkit for the Long Term Study (Daily Video) platform.",
        formatter_class=help_formatter,
        epilog=epilog(),
    )
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules: dict[str, ModuleType] = {}
    for mod in command_modules(only):
        command = sub.add_parser(mod.NAME, help=mod.HELP, **_texts(mod))
        mod.add_arguments(command)
        add_version_argument(command)
        modules[mod.NAME] = mod
    return parser, modules


def _texts(mod: ModuleType) -> dict[str, Any]:
    return {
        "description": getattr(mod, "DESCRIPTION", mod.HELP),
        "formatter_class": help_formatter,
        "epilog": epilog(getattr(mod, "EXAMPLES", "")),
    }


def script_parser(command: str) -> tuple[OneLineParser, dict[str, ModuleType]]:
    """The parser of one command standing alone, as ``scripts/<command>.py`` (its own prog)."""
    (mod,) = (m for m in command_modules(command) if command == m.NAME)
    parser = OneLineParser(prog=f"{command}.py", **_texts(mod))
    mod.add_arguments(parser)
    add_version_argument(parser)
    parser.set_defaults(command=command)
    return parser, {command: mod}


def main(argv: Sequence[str] | None = None, *, script: str | None = None) -> int:
    """Parse, run one command, map every known error to one line and an exit status.

    ``script`` names the command of a ``scripts/<name>.py`` shim: ``argv`` then holds only
    that command's flags, and messages are prefixed with the script's name.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with terminate_as_interrupt():
            return _main(argv, script)
    except Terminated as exc:  # before a command ran (while parsing flags) or after it ended
        print(f"{script or 'longterm'}: terminated by {exc.name}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:  # Ctrl-C in the same windows: still one line, never a traceback
        print(f"{script or 'longterm'}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # --help into a closed pipe
        return quiet_broken_pipe()


def _main(argv: list[str], script: str | None) -> int:
    if script is not None:
        parser, modules = script_parser(script)
    else:
        first = argv[0] if argv and not argv[0].startswith("-") else None
        parser, modules = build_parser("longterm", only=first)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return int(ExitCode.USAGE)
    who = parser.prog if script else f"{parser.prog} {args.command}"
    setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    ctx = Context(args=args, command=args.command)
    try:
        ctx.open_log()
        code = int(modules[args.command].run(ctx))
        sys.stdout.flush()
        return code
    except LongtermError as exc:
        print(f"{who}: error: {exc}", file=sys.stderr)
        ctx.log_error(str(exc), int(exc.exit_code))
        return int(exc.exit_code)
    except Terminated as exc:
        print(f"{who}: terminated by {exc.name}", file=sys.stderr)
        ctx.log_error(f"terminated by {exc.name}", exc.exit_status)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"{who}: interrupted", file=sys.stderr)
        ctx.log_error("interrupted", int(ExitCode.INTERRUPTED))
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return quiet_broken_pipe()
    finally:
        ctx.close_log()


def quiet_broken_pipe() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as ``cat`` would.

    stdout is pointed at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 128 + signal.SIGPIPE


def script_main(command: str) -> None:
    """Entry for the ``scripts/<name>.py`` shims: same flags, same behaviour."""
    sys.exit(main(sys.argv[1:], script=command))


def console_main() -> None:
    sys.exit(main())
