"""The ``longterm`` command: one subcommand per documented script.

Command modules are discovered in this package: any module that defines ``NAME`` and ``run``
is a subcommand, so adding a script is adding one module (plus its ``scripts/`` shim).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import ExitCode, LongtermError
from .common import Context, OneLineParser, epilog, help_formatter, setup_logging

log = logging.getLogger("longterm_sync")

_NOT_COMMANDS = {"common", "docs"}


def command_modules() -> list[ModuleType]:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_COMMANDS or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 50), m.NAME))


def build_parser(prog: str = "longterm") -> tuple[OneLineParser, dict[str, ModuleType]]:
    parser = OneLineParser(
        prog=prog,
        description="Experimenter's toolkit for the Long Term Study (Daily Video) platform.",
        formatter_class=help_formatter,
        epilog=epilog(),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    modules: dict[str, ModuleType] = {}
    for mod in command_modules():
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=getattr(mod, "DESCRIPTION", mod.HELP),
            formatter_class=help_formatter,
            epilog=epilog(getattr(mod, "EXAMPLES", "")),
        )
        mod.add_arguments(p)
        modules[mod.NAME] = mod
    return parser, modules


def main(argv: Sequence[str] | None = None, prog: str = "longterm") -> int:
    """Parse, run one command, map every known error to one line and an exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, modules = build_parser(prog)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return int(ExitCode.USAGE)
    setup_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    ctx = Context(args=args, command=args.command)
    try:
        return int(modules[args.command].run(ctx))
    except LongtermError as exc:
        print(f"{prog} {args.command}: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


def script_main(command: str) -> None:
    """Entry for the ``scripts/<name>.py`` shims: same flags, same behaviour."""
    prog = f"{command}.py"
    sys.exit(main([command, *sys.argv[1:]], prog=prog))


def console_main() -> None:
    sys.exit(main())
