"""Reference-guided generation (SDEdit, audio-to-audio): where on the schedule a reference starts.

A low module of its own so that the pipeline and every backend share the one rule without the
pipeline importing the backends (they import it).
"""

from __future__ import annotations

import math


def reference_steps(steps: int, strength: float) -> tuple[int, int]:
    """(steps skipped, steps run) of a `steps`-step schedule started from a reference at `strength`.

    As diffusers' img2img / AudioLDM style transfer: the first round(steps * (1 - strength))
    timesteps are skipped and the reference latent is noised to the first kept one. strength 1
    is plain generation from pure noise (nothing skipped, the reference unused); strength 0
    runs nothing (the reference itself); any other strength runs at least one step.
    """
    steps = int(steps)
    strength = float(strength)
    if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    if strength >= 1.0:
        return 0, steps
    if strength <= 0.0:
        return steps, 0
    skipped = min(steps - 1, int(round(steps * (1.0 - strength))))
    return skipped, steps - skipped
