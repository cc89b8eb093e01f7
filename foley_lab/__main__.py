"""`python -m foley_lab train|eval ...`: the research commands (see foley_lab/cli)."""

from __future__ import annotations

import sys

from foley_core import offline

offline.configure(allow_downloads="--allow-downloads" in sys.argv)

from foley_core.cli import run_command  # noqa: E402
from foley_lab.cli import build_parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
