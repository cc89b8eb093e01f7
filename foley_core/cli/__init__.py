"""Command-line interface: `python launch.py COMMAND ...`.

Each command is a module in this package with `add_arguments(parser)` and `run(args) -> int`.
The research commands (train, eval) live in `foley_lab` (`python -m foley_lab train|eval`), which
builds its parser with the same `build_parser` / `run_command`; here they are only a pointer.
A `FoleyError` (or a usage mistake caught by the parser) becomes one line on stderr and exit code
2; outputs are written atomically, so a failed command leaves no partial file. Anything else is a
bug: one "internal error" line and exit 1, the traceback saved to a crash log (named in that line)
and printed too with `--debug` or FOLEY_DEBUG=1, for the bug report.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

DEBUG_ENV = "FOLEY_DEBUG"


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line and a pointer to --help, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see: {self.prog} --help)\n")

# command name -> (module, one-line help)
COMMANDS = {
    "generate": ("foley_core.cli.generate", "generate a sound stem for a video (or text alone)"),
    "render": ("foley_core.cli.render", "re-render a saved project to WAV / stems zip / MP4"),
    "detect": ("foley_core.cli.detect", "propose masks, tracks and motion curves from a video"),
    "batch": ("foley_core.cli.batch", "render a shot list (JSON or CSV) in parallel on Ray"),
    "library": ("foley_core.cli.library", "search the sound library and your folders; index folders"),
}


# commands that moved to the research package: `launch.py NAME ...` says where they went
MOVED = {name: f"python -m foley_lab {name}" for name in ("train", "eval")}


def build_parser(extra_commands: dict | None = None, *, commands: dict | None = None,
                 prog: str = "launch.py", moved: dict | None = None) -> argparse.ArgumentParser:
    """The parser of `commands` (default: the product's COMMANDS) plus `extra_commands`; each
    name of `moved` (default: MOVED) takes any arguments and only points to its new home."""
    parser = _Parser(prog=prog, description="Foley studio")
    parser.add_argument("--allow-downloads", action="store_true",
                        help="let hub-backed models (AudioLDM2, YOLO-World) fetch weights")
    parser.add_argument("--debug", action="store_true",
                        help=f"on an internal error, print the traceback (also: {DEBUG_ENV}=1)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (module_name, help_text) in {**(COMMANDS if commands is None else commands),
                                           **(extra_commands or {})}.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # also accepted after the command; SUPPRESS keeps the top-level value when it is absent
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an internal error, print the traceback")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            p.set_defaults(_missing=True)
            continue
        module.add_arguments(p)
    for name, where in (MOVED if moved is None else moved).items():
        # NUL as the only prefix char: every argument after the name is taken as it is, unparsed
        p = sub.add_parser(name, help=f"moved: {where}", add_help=False, prefix_chars="\0")
        p.add_argument("_ignored", nargs="*")
        p.set_defaults(_moved=where)
    return parser


def run_command(args: argparse.Namespace) -> int:
    from foley_core.errors import FoleyError

    if getattr(args, "_moved", None):
        print(f"error: '{args.command}' moved to the research package; run: {args._moved} ...",
              file=sys.stderr)
        return 2
    if getattr(args, "_missing", False):
        print(f"error: the '{args.command}' command is not available in this build", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except FoleyError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: one line for the user, the traceback kept
        return _internal_error(args, err)


def crash_log_dir() -> Path:
    """`$FOLEY_STUDIO_HOME/logs` (default `~/.foley-studio/logs`): where tracebacks are kept."""
    home = os.environ.get("FOLEY_STUDIO_HOME") or os.path.join("~", ".foley-studio")
    return Path(home).expanduser() / "logs"


def _internal_error(args: argparse.Namespace, err: Exception) -> int:
    text = "".join(traceback.format_exception(err))
    where = ""
    try:
        from foley_core.atomic import write_text_atomic

        folder = crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        write_text_atomic(log, f"launch.py {' '.join(sys.argv[1:])}\n\n{text}")
        where = f"; the traceback is in {log}"
    except Exception:  # noqa: BLE001 - the log is a courtesy; the one-line message must still come
        pass
    debug = getattr(args, "debug", False) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug:
        print(text, end="", file=sys.stderr)
    detail = _one_line(f"{type(err).__name__}: {err}")
    hint = "" if debug else f" (run with --debug or {DEBUG_ENV}=1 to see it)"
    print(f"error: internal error, please report it: {detail}{where}{hint}", file=sys.stderr)
    return 1
