"""Keep the offline path off the network: no analytics, no hub calls, no update checks.

`configure()` must run before gradio, ultralytics, huggingface_hub or transformers are imported,
because they read these variables at import time. Downloads (AudioLDM2 or YOLO-World weights on a
machine with internet) are opt-in with `FOLEY_ALLOW_DOWNLOADS=1` or the CLI's `--allow-downloads`.
"""

from __future__ import annotations

import os

_ALWAYS = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "YOLO_OFFLINE": "1",          # ultralytics: no analytics, no version check
    "YOLO_AUTOINSTALL": "False",  # ultralytics would otherwise pip-install its git `clip` package
    "TOKENIZERS_PARALLELISM": "false",
}
# Ray (launch.py batch) would otherwise report usage statistics to anyscale.com: always off.
_FORCED = {"RAY_USAGE_STATS_ENABLED": "0"}
_HUB_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def downloads_allowed() -> bool:
    return os.environ.get("FOLEY_ALLOW_DOWNLOADS", "") not in ("", "0", "false", "False")


def configure(allow_downloads: bool | None = None) -> None:
    """Set the environment for an offline run (or a download-enabled one, if asked)."""
    if allow_downloads:
        os.environ["FOLEY_ALLOW_DOWNLOADS"] = "1"
    for key, value in _ALWAYS.items():
        os.environ.setdefault(key, value)
    os.environ.update(_FORCED)
    if not downloads_allowed():
        for key, value in _HUB_OFFLINE.items():
            os.environ[key] = value
