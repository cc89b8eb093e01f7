"""Foley studio core: media I/O, loudness curves, stems and mixing, generation, vision.

Nothing here imports Gradio; `app/` is a thin UI over these modules and `launch.py`'s CLI calls
the same functions.
"""

from foley_core.errors import FoleyError

__all__ = ["FoleyError"]
__version__ = "0.1.0"
