#!/usr/bin/env python
"""Foley studio entry point.

    python launch.py                 # serve the studio UI on http://127.0.0.1:7860
    python launch.py serve --port N  # the same, with options
    python launch.py generate ...    # CLI commands: generate, render, detect, batch
    python -m foley_lab train|eval   # research commands (launch.py train|eval points there)
"""

from __future__ import annotations

import sys

from foley_core import offline

offline.configure(allow_downloads="--allow-downloads" in sys.argv)

from foley_core.cli import build_parser, run_command  # noqa: E402

SERVE = {"serve": ("app.serve", "serve the studio UI in the browser (the default)")}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(extra_commands=SERVE)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "serve"])
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
