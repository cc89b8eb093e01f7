"""The sound a take starts from: a reference the user gave, or library clips retrieved for its caption.

`read_reference` reads any form a caller gives (a clip id, an audio file, a loaded clip, an
(audio, sr) pair, the `Reference` record a stem keeps); `retrieve_candidates` picks one clip per candidate. Each comes back as a
`CandidateReference` with the way it will be fitted to the selection (`fit.fit_kind`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from foley_core.audio_io import read_audio
from foley_core.errors import MediaError
from foley_core.library.catalog import USER_CATEGORY, LibraryEntry, LoadedReference, load_reference
from foley_core.library.fit import check_reference_audio, fit_kind
from foley_core.library.retrieve import retrieve_references
from foley_core.request import Reference


def read_reference(reference, library=None) -> tuple[np.ndarray, int, Any]:
    """(audio, sr, entry) of a reference given to `generate`; entry is a LibraryEntry or None.

    `reference`: a library clip id (of `library`, a SoundLibrary that may hold the user's
    folders; default the bundled one) or an audio file path (any common format and rate), a
    `library.LoadedReference` or `library.LibraryEntry`, an (audio, sr) pair, or a stem's
    `request.Reference` record. Raises MediaError for a missing, unreadable, empty, NaN or
    silent sound, and for a user-folder clip id that no library given holds.
    """
    if isinstance(reference, Reference):
        # a stem's record: the user's own sound by its (absolute) path, a library clip by its id
        own = bool(reference.path) and os.path.isabs(reference.path)
        reference = reference.path if own else reference.clip_id
    if isinstance(reference, LoadedReference):
        audio = check_reference_audio(reference.audio, reference.sr, name=f"The reference '{reference.entry.id}'")
        return audio, int(reference.sr), reference.entry
    if isinstance(reference, LibraryEntry):
        audio, sr = read_audio(reference.path)
        return check_reference_audio(audio, sr, name=f"The reference '{reference.id}'"), int(sr), reference
    if isinstance(reference, (str, os.PathLike)):
        if isinstance(reference, str) and not reference.strip():
            raise MediaError("the reference is empty: give a library clip id or an audio file")
        _check_user_clip_id(reference, library)
        loaded = load_reference(reference, library=library)
        return loaded.audio, int(loaded.sr), loaded.entry
    if isinstance(reference, tuple) and len(reference) == 2:
        audio, sr = reference
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)):
            raise MediaError(f"a reference given as (audio, sr) needs a whole sample rate in Hz, got {sr!r}")
        return check_reference_audio(np.asarray(audio), int(sr)), int(sr), None
    raise MediaError("a reference must be a library clip id, an audio file path, or an (audio, sr) pair; "
                     f"got {type(reference).__name__}")


def _check_user_clip_id(reference: str | os.PathLike, library) -> None:
    """A user-folder clip id (`user/<folder>/<path>`) only a library with that folder knows:
    without it the file lookup would say "not found" about a path the user never meant."""
    if not isinstance(reference, str) or not reference.startswith(f"{USER_CATEGORY}/") or os.path.lexists(reference):
        return
    if library is not None and reference in library:
        return
    where = "the library given" if library is not None else "the bundled library (no library was given)"
    raise MediaError(f"the reference '{reference}' is a clip of your own sound folders, but {where} does not "
                     "hold it; pass library=SoundLibrary(folders=[...]) with the folder it is in")


@dataclass(frozen=True)
class CandidateReference:
    """The sound one candidate starts from, and how it is fitted (its kind)."""

    audio: np.ndarray
    sr: int
    entry: Any
    kind: str
    rank: int | None = None      # retrieved clips: search rank and score
    score: float = 0.0


def retrieve_candidates(caption: str, n: int, library, prefer: str | None,
                        reference_fit: str) -> list[CandidateReference]:
    """One library clip per candidate for `caption` (library.retrieve_references), of the kind
    the request asks for first (`prefer`: `library.retrieve.wanted_kind`)."""
    picked = retrieve_references(caption, n=n, library=library, prefer=prefer)
    return [CandidateReference(r.audio, r.sr, r.entry, fit_kind(r.audio, r.sr, reference_fit), r.rank, r.score)
            for r in picked]
