"""Library search quality and speed (prints a table; writes results/search_bench.json; never a test).

    PYTHONPATH=. python benchmarks/bench_search.py [--sfx ../shared/sfx] [--out results/search_bench.json]

- Quality: the 100 labelled queries of benchmarks/data/search_queries.json (written from the 19
  categories before any result was seen; relevance = category in the query's set and, if it has
  keywords, a keyword starting a word of the clip's caption or file names). Precision@5 and
  recall@10 for every fusion in `search.FUSIONS` on the bundled library and on ../shared/sfx
  (1,411 clips, indexed from its manifest). The fusion is chosen on the DEV queries (mean of P@5
  and R@10 over both libraries) and reported on the TEST queries; "before" is the embedding-only
  search the library had before issue 15 (`semantic`).
- More like this: over ../shared/sfx, the share of each clip's 5 nearest neighbours (log-mel
  statistics) in its category, against random neighbours and against the 5 clips nearest in
  duration; also with neighbours cut from the same source file excluded (they are near-copies).
- Speed: a synthetic 10,000-clip index (random caption embeddings, captions drawn from a
  vocabulary): p50/p95 of a query (MiniLM query encoding + keyword + fusion + top-k), after the
  one-time model load, with and without a category + duration filter; and the index build time.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from foley_core.atomic import atomic_path  # noqa: E402
from foley_core.library import CATEGORIES, LibraryEntry, SoundLibrary, embed_sentences  # noqa: E402
from foley_core.library import search as engine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
QUERIES = REPO / "benchmarks" / "data" / "search_queries.json"


def name_words(name: str) -> str:
    """File-name words for the relevance rule (its own split, not the engine's)."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return " ".join(re.split(r"[\W_\d]+", name.lower()))


def relevant(query: dict, category: str, text: str) -> bool:
    if category not in query["categories"]:
        return False
    return not query["keywords"] or any(re.search(r"\b" + re.escape(k), text) for k in query["keywords"])


def clip_text(entry: LibraryEntry) -> str:
    source = Path(entry.source_path.split("#")[0]).stem if entry.source_path else ""
    return f"{entry.caption.lower()} {name_words(entry.id)} {name_words(source)}"


def sfx_library(sfx: Path, cache_dir: Path) -> SoundLibrary:
    """../shared/sfx as a library: its manifest rewritten as an index.csv with absolute paths."""
    root = Path(tempfile.mkdtemp(prefix="sfx-index-"))
    with open(sfx / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(root / "index.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "file", "caption", "category", "seconds", "licence", "attribution", "source_package",
                    "source_path"])
        for r in rows:
            w.writerow([r["id"], str((sfx / r["file"]).resolve()), r["caption"], r["category"], r["seconds"],
                        r["license"], r["attribution"], r["source_package"], r["source_path"]])
    return SoundLibrary(root, cache_dir=cache_dir)


def evaluate(lib: SoundLibrary, queries: list[dict], qvecs: np.ndarray) -> dict:
    index = lib._search_index()
    texts = [clip_text(e) for e in index.entries]
    out: dict = {}
    per_query = []
    for q, qv in zip(queries, qvecs):
        rel = np.array([relevant(q, e.category, t) for e, t in zip(index.entries, texts)])
        kw = index.keywords.scores(engine.terms(q["query"]))
        sem = index.captions @ qv
        per_query.append((q, rel, kw, sem))
    for fusion in engine.FUSIONS:
        res = {}
        for split in ("dev", "test"):
            p5, r10 = [], []
            for q, rel, kw, sem in per_query:
                if q["split"] != split or not rel.any():
                    continue
                top = engine._top(engine.fuse(kw, sem, fusion), 10, None)
                p5.append(rel[top[:5]].mean())
                r10.append(rel[top].sum() / rel.sum())
            res[split] = {"p_at_5": float(np.mean(p5)), "r_at_10": float(np.mean(r10)), "n_queries": len(p5)}
        out[fusion.name] = res
    # the best any ranking can do: a query with 2 relevant clips has P@5 at most 0.4
    out["ideal"] = {split: {"p_at_5": float(np.mean([min(5, rel.sum()) / 5 for q, rel, _, _ in per_query
                                                       if q["split"] == split and rel.any()])),
                            "r_at_10": float(np.mean([min(10, rel.sum()) / rel.sum() for q, rel, _, _ in per_query
                                                       if q["split"] == split and rel.any()]))}
                    for split in ("dev", "test")}
    return out


def ball_bounce(lib: SoundLibrary, fusion: engine.Fusion) -> list[str]:
    return [f"{h.entry.category}: {h.entry.caption}" for h in lib.search("ball bounce", k=5, fusion=fusion)]


def more_like_this(lib: SoundLibrary) -> dict:
    index = lib._search_index()
    entries = index.entries
    t = time.perf_counter()
    feats = lib._audio_features(entries)
    feat_s = time.perf_counter() - t
    cats = np.array([e.category for e in entries])
    source = np.array([e.source_path.split("#")[0] for e in entries])
    log_dur = np.log(np.array([max(e.seconds, 1e-3) for e in entries]))
    n = len(entries)
    res = {"same_category_top5": [], "same_category_top5_other_source": [], "duration_top5": [],
           "duration_top5_other_source": []}
    for i in range(n):
        keep = np.ones(n, dtype=bool)
        keep[i] = False
        other = keep & (source != source[i])
        for name, mask in (("", keep), ("_other_source", other)):
            top = [j for j, _ in engine.rank_similar(feats, feats[i], 5, mask)]
            res["same_category_top5" + name].append(np.mean(cats[top] == cats[i]))
            dur = engine._top(-np.abs(log_dur - log_dur[i]), 5, mask)
            res["duration_top5" + name].append(np.mean(cats[dur] == cats[i]))
    counts = {c: int((cats == c).sum()) for c in set(cats)}
    random_rate = float(np.mean([(counts[c] - 1) / (n - 1) for c in cats]))
    out = {k: float(np.mean(v)) for k, v in res.items()}
    out.update(random_top5=random_rate, n_clips=n, feature_seconds_total=feat_s)
    return out


def latency(n: int = 10_000, queries: list[str] = (), seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    vocab = sorted({w for q in queries for w in q.split()} | set(CATEGORIES) |
                   {"wood", "metal", "heavy", "light", "distant", "close", "small", "large", "soft", "hard"})
    entries = [LibraryEntry(id=f"synthetic/{i:05d}", path=Path(f"/synthetic/Clip_{i:05d}_{rng.choice(vocab)}.wav"),
                            caption=" ".join(rng.choice(vocab, size=rng.integers(2, 7))),
                            category=str(rng.choice(CATEGORIES)), seconds=float(rng.uniform(0.2, 10.0)))
               for i in range(n)]
    emb = rng.standard_normal((n, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    t = time.perf_counter()
    index = engine.SearchIndex(entries, [f"{e.caption} {e.path.stem} {e.category}" for e in entries], emb)
    build_s = time.perf_counter() - t
    embed_sentences(["warm up"])           # the one-time model load is not a query
    out = {"n_clips": n, "index_build_s": build_s}
    for name, filt in (("plain", {}), ("filtered", {"category": "impact", "min_s": 0.5, "max_s": 3.0})):
        times = []
        for rep in range(2):
            for q in queries:
                t = time.perf_counter()
                qv = embed_sentences([q])[0]
                keep = index.mask(**filt) if filt else None
                index.search(q, qv, 10, keep)
                times.append((time.perf_counter() - t) * 1000)
        out[name] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                     "n": len(times)}
    # the part that grows with the library: everything but the query encoding
    qv = embed_sentences(["a ball bounces"])[0]
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q, qv, 10)
        times.append((time.perf_counter() - t) * 1000)
    out["ranking_only"] = {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sfx", type=Path, default=REPO.parent / "shared" / "sfx")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "search_bench.json")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    queries = json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]
    cache = Path(tempfile.mkdtemp(prefix="search-bench-cache-"))
    libs = {"bundled": SoundLibrary(cache_dir=cache), "sfx": sfx_library(args.sfx, cache)}
    qvecs = embed_sentences([q["query"] for q in queries])

    results: dict = {"queries": str(QUERIES.relative_to(REPO)), "threads": args.threads, "quality": {}}
    for name, lib in libs.items():
        results["quality"][name] = evaluate(lib, queries, qvecs)

    def dev_score(fname: str) -> float:
        return float(np.mean([(results["quality"][lib][fname]["dev"]["p_at_5"] +
                               results["quality"][lib][fname]["dev"]["r_at_10"]) / 2 for lib in libs]))

    chosen = max((f.name for f in engine.FUSIONS), key=dev_score)
    results["chosen_on_dev"] = chosen
    results["shipped_fusion"] = engine.FUSION.name
    print(f"{'fusion':18} " + " ".join(f"{lib + ' ' + split:>21}" for lib in libs for split in ("dev", "test")))
    print(f"{'':18} " + " ".join(f"{'P@5':>10} {'R@10':>10}" for _ in libs for _ in ("dev", "test")))
    for f in engine.FUSIONS:
        cells = []
        for lib in libs:
            for split in ("dev", "test"):
                r = results["quality"][lib][f.name][split]
                cells.append(f"{r['p_at_5']:10.3f} {r['r_at_10']:10.3f}")
        mark = " <- chosen on dev" if f.name == chosen else ""
        print(f"{f.name:18} " + " ".join(cells) + mark)
    print(f"{'ideal ranking':18} " + " ".join(
        f"{results['quality'][lib]['ideal'][s]['p_at_5']:10.3f} {results['quality'][lib]['ideal'][s]['r_at_10']:10.3f}"
        for lib in libs for s in ("dev", "test")))
    for lib in libs:
        n = {s: results["quality"][lib]["semantic"][s]["n_queries"] for s in ("dev", "test")}
        print(f"{lib}: {n['dev']} dev and {n['test']} test queries have a relevant clip")
    if chosen != engine.FUSION.name:
        print(f"NOTE: search.FUSION is {engine.FUSION.name}, the dev set chooses {chosen}")

    by_name = {f.name: f for f in engine.FUSIONS}
    results["ball_bounce_top5"] = {lib: {"before": ball_bounce(libs[lib], by_name["semantic"]),
                                         "after": ball_bounce(libs[lib], engine.FUSION)} for lib in libs}
    for lib, r in results["ball_bounce_top5"].items():
        print(f"\n'ball bounce' on {lib}:\n  before: {r['before']}\n  after:  {r['after']}")

    mlt = more_like_this(libs["sfx"])
    results["more_like_this_sfx"] = mlt
    print(f"\nmore like this on sfx ({mlt['n_clips']} clips; features of all clips {mlt['feature_seconds_total']:.0f} s):"
          f" same-category rate of the top 5 = {mlt['same_category_top5']:.3f} "
          f"(other source files only {mlt['same_category_top5_other_source']:.3f}); "
          f"nearest duration {mlt['duration_top5']:.3f} ({mlt['duration_top5_other_source']:.3f}); "
          f"random {mlt['random_top5']:.3f}")

    lat = latency(queries=[q["query"] for q in queries])
    results["latency_10k"] = lat
    print(f"\n10,000-clip synthetic index (built in {lat['index_build_s']:.2f} s), {args.threads} thread(s): "
          f"query p50 {lat['plain']['p50_ms']:.1f} ms, p95 {lat['plain']['p95_ms']:.1f} ms; with category + "
          f"duration filter p50 {lat['filtered']['p50_ms']:.1f} ms, p95 {lat['filtered']['p95_ms']:.1f} ms; "
          f"ranking alone (no query encoding) p50 {lat['ranking_only']['p50_ms']:.2f} ms, "
          f"p95 {lat['ranking_only']['p95_ms']:.2f} ms")

    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
