"""The library's search engine: keywords (BM25) + sentence embeddings, fused; audio "more like this".

- Keywords: every clip's caption, file-name words (camelCase, underscores and digits split),
  categories (ours and UCS) and embedded metadata (BWF `bext` description, iXML, RIFF INFO, tags)
  become Snowball-stemmed terms ("bounces" ~ "bounce"), scored by BM25 over a sparse matrix.
- Semantic: the cosine of the MiniLM caption embeddings to the query's (catalog.embed_sentences).
- Fusion: `FUSION` below, chosen on the dev half of benchmarks/data/search_queries.json and
  reported on its test half (benchmarks/bench_search.py, docs/BENCHMARKS.md "Library search").
- More like this: log-mel statistics of the audio (`audio_features`), z-scored over the library,
  cosine-ranked.

Nothing here loads a model: the caller passes the query's embedding in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import snowballstemmer

from foley_core.atomic import atomic_path

__all__ = [
    "FUSION", "FUSIONS", "Fusion", "KeywordIndex", "SearchIndex", "VectorStore", "audio_features", "fuse",
    "read_tags", "terms", "words", "duration_mask", "AUDIO_FEATURE_SR", "AUDIO_FEATURE_DIM",
]

log = logging.getLogger(__name__)

# Words that carry no sound: a designer's "footsteps on gravel" is about footsteps and gravel.
STOP_WORDS = frozenset(
    "a an the on of in into onto with and or to is are at by from for as its it some someone something "
    "being be this that these those very over under up down out off".split())
_STEMMER = snowballstemmer.stemmer("english")


_CASE_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[\W_\d]+")


def words(text: str) -> list[str]:
    """Lower-case alphabetic words: 'DOORWood_CreakOpen-03' -> ['door', 'wood', 'creak', 'open']."""
    return [w for w in _NON_WORD.split(_CASE_BOUNDARY.sub(" ", text).lower()) if w]


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    # the pure-Python Snowball stemmer costs ~20 us a word; a library repeats its words a lot
    return _STEMMER.stemWord(word)


def terms(text: str) -> list[str]:
    """The stemmed, stop-word-free terms that keyword search matches on."""
    return [_stem(w) for w in words(text) if w not in STOP_WORDS]


# ------------------------------------------------------------------------------ keywords

class KeywordIndex:
    """Okapi BM25 (k1, b) over documents given as term lists; a query costs one sparse column sum."""

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.2, b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        rows, cols, counts = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float64)
        for d, doc in enumerate(docs):
            lengths[d] = len(doc)
            tf: dict[int, int] = {}
            for t in doc:
                j = vocab.setdefault(t, len(vocab))
                tf[j] = tf.get(j, 0) + 1
            rows += [d] * len(tf)
            cols += list(tf)
            counts += list(tf.values())
        self.vocab = vocab
        n = max(len(docs), 1)
        tf_m = sp.csr_matrix((np.asarray(counts, dtype=np.float64), (rows, cols)), shape=(len(docs), len(vocab)))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        avg = lengths.mean() if len(docs) and lengths.mean() > 0 else 1.0
        norm = k1 * (1.0 - b + b * lengths / avg)
        tf_m = tf_m.tocoo()
        weights = idf[tf_m.col] * tf_m.data * (k1 + 1.0) / (tf_m.data + norm[tf_m.row])
        self._w = sp.csc_matrix((weights.astype(np.float32), (tf_m.row, tf_m.col)), shape=tf_m.shape)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """BM25 of every document for the query's terms (0 where none matches)."""
        cols = [self.vocab[t] for t in dict.fromkeys(query_terms) if t in self.vocab]
        if not cols:
            return np.zeros(self._w.shape[0], dtype=np.float32)
        return np.asarray(self._w[:, cols].sum(axis=1), dtype=np.float32).ravel()


# ------------------------------------------------------------------------------ fusion

@dataclass(frozen=True)
class Fusion:
    """How keyword and semantic scores combine. method: 'semantic' (embedding only, the
    search before keyword fusion), 'keyword' (BM25, ties by semantic), 'rrf' (reciprocal rank fusion with
    constant `rrf_k`; clips without a keyword match get no keyword term) or 'weighted'
    (`weight` x BM25 / the query's best BM25 + (1 - weight) x cosine)."""

    method: str = "weighted"
    weight: float = 0.5
    rrf_k: float = 60.0

    @property
    def name(self) -> str:
        if self.method == "weighted":
            return f"weighted w={self.weight:g}"
        if self.method == "rrf":
            return f"rrf k={self.rrf_k:g}"
        return self.method


FUSIONS = (
    Fusion("semantic"), Fusion("keyword"),
    *(Fusion("rrf", rrf_k=k) for k in (10.0, 30.0, 60.0)),
    *(Fusion("weighted", weight=w) for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)),
)
# Chosen on the DEV queries (benchmarks/bench_search.py --choose); see docs/BENCHMARKS.md.
FUSION = Fusion("weighted", weight=0.3)


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(scores.shape[0], dtype=np.float64)
    ranks[order] = np.arange(1, scores.shape[0] + 1)
    return ranks


def fuse(keyword: np.ndarray, semantic: np.ndarray, fusion: Fusion = FUSION) -> np.ndarray:
    """One score per clip from BM25 `keyword` and cosine `semantic` scores (higher is better)."""
    keyword = np.asarray(keyword, dtype=np.float64)
    semantic = np.asarray(semantic, dtype=np.float64)
    if fusion.method == "semantic":
        return semantic
    best = keyword.max() if keyword.size else 0.0
    kw = keyword / best if best > 0 else np.zeros_like(keyword)
    if fusion.method == "keyword":
        return kw + 1e-3 * semantic        # semantic only orders clips with the same keyword score
    if fusion.method == "rrf":
        fused = 1.0 / (fusion.rrf_k + _ranks(semantic))
        return fused + np.where(keyword > 0, 1.0 / (fusion.rrf_k + _ranks(keyword)), 0.0)
    if fusion.method == "weighted":
        return fusion.weight * kw + (1.0 - fusion.weight) * semantic
    raise ValueError(f"unknown fusion {fusion.method!r}")


# ------------------------------------------------------------------------------ the index

class SearchIndex:
    """An immutable snapshot of a library for searching: keyword index, caption embeddings
    `(n, 384)` and (optionally, for more-like-this) audio features `(n, d)`."""

    def __init__(self, entries: Sequence, keyword_texts: Sequence[str], caption_matrix: np.ndarray) -> None:
        self.entries = list(entries)
        self.keywords = KeywordIndex([terms(t) for t in keyword_texts])
        self.captions = np.ascontiguousarray(caption_matrix, dtype=np.float32)
        self.seconds = np.array([float(getattr(e, "seconds", np.nan)) for e in self.entries])
        self.category = np.array([e.category for e in self.entries], dtype=object)
        self.ucs = [{v.lower() for v in (getattr(e, "ucs_category", ""), getattr(e, "ucs_subcategory", ""),
                                         getattr(e, "cat_id", "")) if v} for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def mask(self, *, category: str | None = None, ucs_category: str | None = None,
             min_s: float | None = None, max_s: float | None = None) -> np.ndarray:
        """Which clips pass the filters (a duration filter drops clips of unknown length)."""
        keep = np.ones(len(self.entries), dtype=bool)
        if category is not None:
            keep &= self.category == category
        if ucs_category is not None:
            want = ucs_category.strip().lower()
            keep &= np.array([want in u for u in self.ucs], dtype=bool)
        return keep & duration_mask(self.seconds, min_s=min_s, max_s=max_s)

    def search(self, query: str, query_vector: np.ndarray, k: int, keep: np.ndarray | None = None,
               fusion: Fusion = FUSION) -> list[tuple[int, float, float, float]]:
        """(row, fused score, keyword score 0..1 of the query's best, cosine) of the best `k`."""
        keyword = self.keywords.scores(terms(query))
        semantic = self.captions @ np.asarray(query_vector, dtype=np.float32)
        fused = fuse(keyword, semantic, fusion)
        best = float(keyword.max()) if keyword.size else 0.0
        return [(i, float(fused[i]), float(keyword[i] / best) if best > 0 else 0.0, float(semantic[i]))
                for i in _top(fused, k, keep)]


def duration_mask(seconds: np.ndarray, *, min_s: float | None = None, max_s: float | None = None) -> np.ndarray:
    """Which clips of lengths `seconds` (NaN = unknown) lie within [min_s, max_s] (None = no bound).
    With a bound, a clip of unknown length is dropped: it cannot be shown to fit."""
    seconds = np.asarray(seconds, dtype=np.float64)
    keep = np.ones(seconds.shape[0], dtype=bool)
    if min_s is not None:
        keep &= seconds >= min_s
    if max_s is not None:
        keep &= seconds <= max_s
    return keep


def _top(scores: np.ndarray, k: int, keep: np.ndarray | None) -> list[int]:
    """Indices of the `k` highest scores among `keep`, best first, ties in index order."""
    idx = np.flatnonzero(keep) if keep is not None else np.arange(scores.shape[0])
    if idx.size == 0:
        return []
    sub = scores[idx]
    if idx.size > k:
        part = np.argpartition(-sub, k - 1)[:k]
        # argpartition breaks ties arbitrarily: widen to every clip tied with the k-th
        cut = sub[part].min()
        part = np.flatnonzero(sub >= cut)
    else:
        part = np.arange(idx.size)
    order = part[np.lexsort((idx[part], -sub[part]))]
    return [int(i) for i in idx[order[:k]]]


def rank_similar(features: np.ndarray, query: np.ndarray, k: int, keep: np.ndarray | None = None
                 ) -> list[tuple[int, float]]:
    """More like this: rows of `features` nearest `query` by cosine after z-scoring each feature
    over the library (so loud bands do not dominate), best first."""
    mu = features.mean(axis=0)
    sd = features.std(axis=0) + 1e-6
    z = (features - mu) / sd
    z /= np.linalg.norm(z, axis=1, keepdims=True) + 1e-9
    q = (query - mu) / sd
    q /= np.linalg.norm(q) + 1e-9
    sims = z @ q
    return [(i, float(sims[i])) for i in _top(sims, k, keep)]


# ------------------------------------------------------------------------------ audio features

AUDIO_FEATURE_SR = 16_000
_N_MELS = 64
AUDIO_FEATURE_DIM = 3 * _N_MELS
_MEL_BASIS: np.ndarray | None = None


def audio_features(audio: np.ndarray, sr: int) -> np.ndarray:
    """A 192-d description of a sound for "more like this": per mel band (64, 16 kHz, 64 ms
    windows) the mean and standard deviation of the level-free log-mel and the mean absolute
    frame-to-frame change (how it moves). Mono float32 in; about 5 ms per second of audio."""
    global _MEL_BASIS
    from foley_core.audio_io import resample, to_mono

    x = to_mono(np.asarray(audio, dtype=np.float32))
    if sr != AUDIO_FEATURE_SR:
        x = resample(x, sr, AUDIO_FEATURE_SR)
    n_fft, hop = 1024, 256
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    if _MEL_BASIS is None:
        import librosa

        _MEL_BASIS = librosa.filters.mel(sr=AUDIO_FEATURE_SR, n_fft=n_fft, n_mels=_N_MELS).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel = np.log10(power @ _MEL_BASIS.T + 1e-10)
    # a 60 dB range below the loudest bin (as power_to_db's top_db): a take's noise floor or its
    # digital silence, far below the sound, must not change what it is
    logmel = np.maximum(logmel, logmel.max() - 6.0)
    # and only frames within 60 dB of the loudest: silence padding says nothing about the sound
    energy = logmel.max(axis=1)
    logmel = logmel[energy > energy.max() - 6.0]
    logmel = logmel - logmel.mean()          # level-free: a quieter take of a sound is the same sound
    motion = np.abs(np.diff(logmel, axis=0)).mean(axis=0) if logmel.shape[0] > 1 else np.zeros(_N_MELS)
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0), motion]).astype(np.float32)


# ------------------------------------------------------------------------------ vector cache

class VectorStore:
    """Vectors keyed by a string (a caption's hash, a file's path+mtime+size) in one `.npy` matrix
    plus a JSON list of keys under `cache_dir`, or in memory only when `cache_dir` is None. Growing
    it writes both files atomically; a damaged cache is ignored (it is only an optimisation)."""

    def __init__(self, cache_dir: Path | None, name: str, dim: int) -> None:
        self.dim = dim
        self._rows: dict[str, np.ndarray] = {}
        self._matrix_file = cache_dir / f"{name}.npy" if cache_dir is not None else None
        self._keys_file = cache_dir / f"{name}.keys.json" if cache_dir is not None else None
        if self._matrix_file is not None and self._matrix_file.is_file() and self._keys_file.is_file():
            try:
                matrix = np.load(self._matrix_file, allow_pickle=False)
                keys = json.loads(self._keys_file.read_text(encoding="utf-8"))
                if matrix.shape == (len(keys), dim) and np.isfinite(matrix).all():
                    self._rows = {k: matrix[i].astype(np.float32) for i, k in enumerate(keys)}
                else:
                    log.warning("ignoring the damaged cache %s (shape %s)", self._matrix_file, matrix.shape)
            except (OSError, ValueError) as err:
                log.warning("ignoring the unreadable cache %s: %s", self._matrix_file, err)

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def get(self, key: str) -> np.ndarray | None:
        return self._rows.get(key)

    def put(self, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        for k, v in items.items():
            self._rows[k] = np.asarray(v, dtype=np.float32).reshape(self.dim)
        if self._matrix_file is None:
            return
        keys = list(self._rows)
        try:
            with atomic_path(self._matrix_file) as tmp:
                with open(tmp, "wb") as fh:
                    np.save(fh, np.stack([self._rows[k] for k in keys]), allow_pickle=False)
            with atomic_path(self._keys_file) as tmp:
                Path(tmp).write_text(json.dumps(keys), encoding="utf-8")
        except OSError as err:      # searching still works without the cache
            log.warning("cannot write the cache %s: %s", self._matrix_file, err)


def file_key(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(f"{path}\0{mtime_ns}\0{size}".encode("utf-8")).hexdigest()[:32]


def encode_vector(v: np.ndarray) -> str:
    return base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4").astype(np.float32)


# ------------------------------------------------------------------------------ embedded metadata

_IXML_FIELDS = frozenset({"NOTE", "DESCRIPTION", "BWF_DESCRIPTION", "CATEGORY", "SUBCATEGORY", "CATID",
                          "FXNAME", "KEYWORDS", "TRACK_NAME", "NAME", "LIBRARY", "SHOW", "SCENE"})
_INFO_FIELDS = {b"INAM": "title", b"ICMT": "comment", b"IKEY": "keywords", b"ISBJ": "subject",
                b"IGNR": "genre", b"IART": "artist", b"ICOP": "copyright"}
_MAX_CHUNK = 1 << 20        # metadata chunks are small; a larger one is not read into memory


def read_tags(path: Path) -> dict[str, str]:
    """Text metadata embedded in a sound file: for WAV the BWF `bext` description, iXML fields
    (e.g. `ixml_note`, `ixml_category`) and RIFF INFO tags; for other formats the tags libsndfile
    reads (title, comment, ... of FLAC/OGG Vorbis comments, AIFF NAME/ANNO). Empty if none or if
    the file cannot be parsed (the audio itself is checked elsewhere)."""
    tags: dict[str, str] = {}
    try:
        if path.suffix.lower() in (".wav", ".wave"):
            tags.update(_riff_tags(path))
        else:
            import soundfile as sf

            with sf.SoundFile(str(path)) as f:
                for name, value in f.copy_metadata().items():
                    if value and value.strip():
                        tags[name] = value.strip()
    except (OSError, RuntimeError, ValueError, struct.error, TypeError):
        pass
    return tags


def _riff_tags(path: Path) -> dict[str, str]:
    tags: dict[str, str] = {}
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return tags
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                break
            cid, size = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid in (b"bext", b"iXML", b"LIST") and size <= _MAX_CHUNK:
                body = fh.read(size)
                if cid == b"bext":
                    desc = _text(body[:256])
                    if desc:
                        tags["description"] = desc
                elif cid == b"iXML":
                    tags.update(_ixml(body))
                elif body[:4] == b"INFO":
                    tags.update(_info(body[4:]))
                if size % 2:
                    fh.seek(1, 1)
            else:
                if cid == b"data" and size == 0xFFFFFFFF:      # RF64 data size lives in ds64
                    break
                fh.seek(size + (size % 2), 1)
    return tags


def _text(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()


def _ixml(body: bytes) -> dict[str, str]:
    try:
        root = ET.fromstring(body.split(b"\0", 1)[0].strip())
    except ET.ParseError:
        return {}
    out: dict[str, str] = {}
    for el in root.iter():
        if el.tag.upper() in _IXML_FIELDS and el.text and el.text.strip():
            key = f"ixml_{el.tag.lower()}"
            out[key] = f"{out[key]} {el.text.strip()}" if key in out else el.text.strip()
    return out


def _info(body: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos + 8 <= len(body):
        cid, size = body[pos:pos + 4], struct.unpack("<I", body[pos + 4:pos + 8])[0]
        value = _text(body[pos + 8:pos + 8 + size])
        if cid in _INFO_FIELDS and value:
            out[_INFO_FIELDS[cid]] = value
        pos += 8 + size + (size % 2)
    return out
