"""Reading a mask image a user (or a project folder) gives: the one safe reader.

A PNG's header can claim 20000x20000 pixels in a few kilobytes; decoding it would take gigabytes.
The size is read from the header first and refused when it is not what the caller needs (the
video's frame size) or is larger than any video the studio accepts, before any pixel is decoded.
Whatever PIL raises for a bad file (an unknown format, a truncated stream, a decompression bomb,
an oversized text chunk) becomes a one-line MaskError.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from foley_core import constants
from foley_core.errors import MaskError

__all__ = ["read_mask_image"]


def read_mask_image(path: str | os.PathLike, *, size_wh: tuple[int, int] | None = None,
                    max_pixels: int = constants.MAX_VIDEO_PIXELS) -> np.ndarray:
    """The image at `path` as an (H, W) float32 array in 0..1 (its luminance).

    `size_wh` (the video's width, height) is the only size accepted when given; otherwise any
    size up to `max_pixels`. Raises MaskError before decoding anything larger.
    """
    from PIL import Image

    from foley_core.audio_io import check_input_file

    p = check_input_file(path, "mask image", error=MaskError)
    try:
        with warnings.catch_warnings():
            # PIL only warns between its limit and twice it; a mask never needs that many pixels
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                width, height = img.size
                if size_wh is not None and (width, height) != tuple(size_wh):
                    raise MaskError(f"the mask image is {width}x{height} pixels but the video is "
                                    f"{size_wh[0]}x{size_wh[1]}; draw the mask at the video's frame size")
                if width * height > max_pixels:
                    raise MaskError(f"the mask image is {width}x{height} pixels, larger than any video "
                                    "the studio accepts; draw the mask at the video's frame size")
                return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255.0)
    except MaskError:
        raise
    except (Exception, Image.DecompressionBombWarning) as err:   # noqa: BLE001 - any PIL failure is a bad file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            reason = "it claims more pixels than any video frame"
        raise MaskError(f"cannot read the mask image '{p.name}': {reason}") from None
