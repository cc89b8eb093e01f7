"""The starter sound library and reference fitting (audio-to-audio generation from a real sound).

`SoundLibrary` (catalog.py) holds the bundled clips of assets/library plus user folders, searchable
by caption; `fit_reference` (fit.py) makes a reference exactly as long as a stem; licences.py
says what each clip's licence asks of a stem made from it; peaks.py draws a clip's waveform
thumbnail. Importing this package loads no model.
"""

from foley_core.library.catalog import (
    CATEGORIES,
    USER_CATEGORY,
    LibraryEntry,
    LoadedReference,
    SearchHit,
    SoundLibrary,
    bundled_library_root,
    caption_from_filename,
    default_library,
    embed_sentences,
    load_reference,
)
from foley_core.library.fit import FIT_MODES, check_reference_audio, classify_reference, fit_kind, fit_reference
from foley_core.library.licences import LICENCES, licence_info

__all__ = [
    "SoundLibrary", "LibraryEntry", "SearchHit", "LoadedReference", "default_library", "load_reference",
    "embed_sentences", "bundled_library_root", "caption_from_filename", "CATEGORIES", "USER_CATEGORY",
    "fit_reference", "fit_kind", "classify_reference", "check_reference_audio", "FIT_MODES", "LICENCES", "licence_info",
]
