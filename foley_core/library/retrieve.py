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

__all__ = ["RetrievedReference", "retrieve_references", "SEARCH_POOL"]

# How many search hits are considered when a kind (one-shot or sustained) is preferred: enough to
# find the other kind among near matches, few enough that a poor match never beats a good one.
SEARCH_POOL = 12


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
