"""Command-line interface: `python launch.py COMMAND ...`.

Each command is a module in this package with `add_arguments(parser)` and `run(args) -> int`.
A `FoleyError` becomes one line on stderr and exit code 2; outputs are written atomically, so a
failed command leaves no partial file.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "generate": ("foley_core.cli.generate", "generate a sound stem for a video (or text alone)"),
    "render": ("foley_core.cli.render", "re-render a saved project to WAV / stems zip / MP4"),
    "detect": ("foley_core.cli.detect", "seed masks, tracks and motion curves from a video"),
    "train": ("foley_core.cli.train", "train the embedded model (VAE, LDM with MAM and TLM)"),
    "eval": ("foley_core.cli.evaluate", "run the evaluation harness and write JSON + markdown"),
    "batch": ("foley_core.cli.batch", "render a shot list (JSON or CSV) in parallel on Ray"),
}


def build_parser(extra_commands: dict | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launch.py", description="Foley studio")
    parser.add_argument("--allow-downloads", action="store_true",
                        help="let hub-backed models (AudioLDM2, YOLO-World) fetch weights")
    sub = parser.add_subparsers(dest="command")
    for name, (module_name, help_text) in {**COMMANDS, **(extra_commands or {})}.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            p.set_defaults(_missing=True)
            continue
        module.add_arguments(p)
    return parser


def run_command(args: argparse.Namespace) -> int:
    from foley_core.errors import FoleyError

    if getattr(args, "_missing", False):
        print(f"error: the '{args.command}' command is not available in this build", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except FoleyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
