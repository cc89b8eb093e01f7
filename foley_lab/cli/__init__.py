"""Research commands: `python -m foley_lab COMMAND ...` (train, eval).

Each command is a module here with `add_arguments(parser)` and `run(args) -> int`; the parser and
dispatch (one-line errors, exit 2, crash log) are the product CLI's, `foley_core.cli`.
"""

from __future__ import annotations

import argparse

from foley_core.cli import build_parser as _build_parser

PROG = "python -m foley_lab"

# command name -> (module, one-line help)
COMMANDS = {
    "train": ("foley_lab.cli.train", "train the embedded model (VAE, LDM with MAM and TLM)"),
    "eval": ("foley_lab.cli.evaluate", "run the evaluation harness and write JSON + markdown"),
}


def build_parser() -> argparse.ArgumentParser:
    return _build_parser(commands=COMMANDS, prog=PROG, moved={})
