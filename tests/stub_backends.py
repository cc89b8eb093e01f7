"""The Backend protocol's plain attributes for test stand-ins, so each stand-in states only what
it is about (its rates, what it follows, its capabilities) and its `generate_window`.
Import from tests as `from stub_backends import StubBackend` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

from foley_core.backends import Capabilities


class StubBackend:
    """16 kHz, 2 s windows, 20 fps frames of 32 x 32, follows nothing, takes nothing optional."""

    name = "stub"
    sr = 16_000
    window_s = 2.0
    video_fps = 20.0
    frame_size = (32, 32)
    obeys: frozenset = frozenset()
    ignores: frozenset = frozenset({"text", "negative", "video", "mask", "curve"})
    trained = False
    description = "stub"
    capabilities = Capabilities()

    def load(self, device="cpu"):
        pass
