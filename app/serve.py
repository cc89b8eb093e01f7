"""`python launch.py serve`: build the studio and serve it (Gradio queue on, offline)."""

from __future__ import annotations

import argparse
import logging
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (needs internet)")
    parser.add_argument("--work-dir", default=None,
                        help="folder for per-session files (default: the system temp folder)")


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    from foley_core import offline

    offline.configure()  # before gradio is imported (analytics off)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if os.environ.get("FOLEY_STUDIO_DEBUG"):
        logging.getLogger("app").setLevel(logging.DEBUG)
        logging.getLogger("foley_core").setLevel(logging.DEBUG)
    from app import studio
    from foley_core.errors import FoleyError

    if not 0 < int(args.port) < 65536:
        raise FoleyError(f"--port must be between 1 and 65535; got {args.port}")
    from app import session

    # a folder path typed in the page is read on this machine, and its sounds are served to the
    # page (app/audition.py): only its own user may do that
    session.SAVED_FOLDERS.browser_may_add = is_loopback(args.host) and not args.share
    demo = studio.build_app(work_root=args.work_dir)
    studio.warm_up_library()
    # One generation at a time per event (CPU-bound); other events run alongside.
    demo.queue(default_concurrency_limit=4)
    allowed = [os.path.abspath(args.work_dir)] if args.work_dir else None
    demo.launch(server_name=args.host, server_port=int(args.port), share=bool(args.share),
                show_error=True, inbrowser=False, allowed_paths=allowed,
                **studio.launch_kwargs())
    return 0
