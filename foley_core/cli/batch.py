"""`launch.py batch SHOTLIST --out DIR [--address ray://HOST:10001] [--workers N]`.

Renders a shot list (JSON or CSV; see foley_core/batch.py for the format) in parallel on Ray:
without --address on a local Ray on this machine, with one on a cluster. Progress goes to
stderr; one JSON summary line to stdout; OUT/report.jsonl has a line per shot. A failing shot
is reported and the others go on (exit code 1 when any failed); a re-run skips shots whose
outputs exist for the same request.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shot_list", metavar="SHOTLIST", help="shot list: .json ({\"shots\": [...]}) or .csv")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (made if its parent exists): DIR/<shot>/ and DIR/report.jsonl")
    parser.add_argument("--address", metavar="ray://HOST:PORT",
                        help="join a Ray cluster (ray://HOST:10001, or 'auto' on a cluster node); "
                             "default: start a local Ray on this machine")
    parser.add_argument("--workers", type=int, default=2, help="model workers (Ray actors), default 2")
    parser.add_argument("--threads", type=int,
                        help="CPU threads per worker (default: this machine's cores / workers)")
    parser.add_argument("--gpus-per-worker", type=float,
                        help="GPUs per worker (default: 1 when CUDA is available here, else 0)")
    parser.add_argument("--library-folder", action="append", default=[], metavar="DIR",
                        help="also pick from your own sound folder (repeatable; every node must see it "
                             "at the same path)")
    parser.add_argument("--dashboard", action="store_true",
                        help="start Ray's dashboard (local Ray: on 127.0.0.1) and print its URL")


def run(args: argparse.Namespace) -> int:
    from foley_core.batch import BatchOptions, run_batch

    summary = run_batch(args.shot_list, BatchOptions(
        out_dir=args.out, address=args.address, workers=args.workers, threads=args.threads,
        gpus_per_worker=args.gpus_per_worker, dashboard=args.dashboard,
        library_folders=args.library_folder))
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0
