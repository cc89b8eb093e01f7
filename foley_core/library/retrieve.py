"""Retrieval: the library clips a caption asks for, as references for a generation.

A sound designer starts from a library: the caption is a search, the best matches are the raw
material, and the model places and shapes them (onsets, curve, video). `retrieve_references`
returns one distinct clip per candidate, so candidates differ in their source, not only in seed.

Why not the model alone: the embedded model follows timing and loudness but does not yet know
what things sound like from text (docs/BENCHMARKS.md): its text-only takes are named by the
holdout tagger 6 % of the time against about half for real clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from foley_core.audio_io import read_audio
from foley_core.errors import FoleyError
from foley_core.library.catalog import LibraryEntry, SoundLibrary, default_library
from foley_core.library.fit import check_reference_audio, classify_reference

__all__ = ["RetrievedReference", "retrieve_references", "wanted_kind", "SEARCH_POOL"]

# How many search hits are considered when a kind (one-shot or sustained) is preferred: enough to
# find the other kind among near matches, few enough that a poor match never beats a good one.
SEARCH_POOL = 12
# A curve asks for a sustained sound when it is within 20 dB of its peak (the fitter's "active")
# for at least half of the selection: a fade in, a flat level, a swell.
CURVE_ACTIVE_DB = 20.0
CURVE_SUSTAINED_FRACTION = 0.5


def wanted_kind(onsets_s, curve) -> Literal["oneshot", "sustained"] | None:
    """What kind of sound the request asks for: 'oneshot' with onsets (hits) to place;
    'sustained' when a region shows no contact (`onsets_s == []`) or, without onsets, when the
    relative loudness curve (0..1, linear) stays up for most of the selection; else None.

    Why the curve: a short one-shot padded with silence leaves a fade in or a flat curve with
    nothing to shape after its first half second, and the conform cannot make silence loud.
    """
    if onsets_s:
        return "oneshot"
    if onsets_s is not None:
        return "sustained"
    if curve is not None:
        values = np.asarray(curve, dtype=np.float64)
        peak = float(values.max()) if values.size else 0.0
        if peak > 0 and np.mean(values >= peak * 10 ** (-CURVE_ACTIVE_DB / 20)) >= CURVE_SUSTAINED_FRACTION:
            return "sustained"
    return None


@dataclass(frozen=True)
class RetrievedReference:
    """A library clip chosen for a caption: its audio (float32, at `sr`), its search rank and
    score, and its kind (how the fitter treats it: placed at onsets, or looped)."""

    entry: LibraryEntry
    audio: np.ndarray
    sr: int
    rank: int
    score: float
    kind: Literal["oneshot", "sustained"]


def retrieve_references(caption: str, *, n: int, library: SoundLibrary | None = None,
                        prefer: Literal["oneshot", "sustained"] | None = None,
                        pool: int = SEARCH_POOL) -> list[RetrievedReference]:
    """The `n` library clips to start `n` candidates from, best first, each a different clip.

    prefer: with onsets (hits) to place, one-shot clips fit better; for a continuous sound,
        sustained ones. Among the `pool` best matches, clips of the preferred kind come first
        (in search order), then the others; without a preference the search order alone decides.
    If the library holds fewer than `n` clips they are reused in order. Raises FoleyError when
    the library is empty (the caller says how to generate without it).
    """
    lib = library if library is not None else default_library()
    if len(lib) == 0:
        raise FoleyError("the sound library is empty, so no sound can be picked for the caption; "
                         "add a sound folder, give a reference, or generate from scratch")
    hits = lib.search(caption, k=max(int(n), int(pool)))
    chosen: list[RetrievedReference] = []
    for rank, hit in enumerate(hits):
        audio, sr = read_audio(hit.entry.path)
        audio = check_reference_audio(audio, sr, name=f"The library clip '{hit.entry.id}'")
        chosen.append(RetrievedReference(entry=hit.entry, audio=audio, sr=int(sr), rank=rank,
                                         score=float(hit.score), kind=classify_reference(audio, int(sr))))
    if prefer is not None:
        chosen.sort(key=lambda r: (r.kind != prefer, r.rank))
    return [chosen[i % len(chosen)] for i in range(int(n))]
