"""The evaluation harness: metrics, the audio tagger, reference rows, the runner.

- `metrics`: plain metric functions (curve r / MAE, onset F1 and AV-Align, selectivity gap,
  accuracy, confusion, Frechet distance with a bootstrap interval).
- `tagger`: the category tagger / embedder trained on the train split (assets/tagger/);
  `python -m foley_lab.evaluation.tagger train` rebuilds it.
- `references`: reference rows (real clips, caption retrieval with MiniLM, shaped noise).
- `harness`: `run_evaluation(EvalConfig)` -> results dict; `write_results` -> JSON + markdown.
  `python -m foley_lab eval ...` is its command line (foley_lab/cli/evaluate.py).
"""
