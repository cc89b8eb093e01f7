"""Research code of the Foley studio: training, the data simulator, the evaluation harness and its
tagger, synthetic vision fixtures. It imports foley_core; foley_core never imports it (a test scans
the imports), so the product runs without it.

- `training`: accelerate training loops (VAE, decoder-only fine-tuning, LDM), checkpoints.
- `data`: the sfx library reader, augmentation, simulated audio-visual scenes, eval sets.
- `evaluation`: the harness, the reference-strength sweep, metrics, the audio tagger.
- `synthetic`: synthetic vision scenes for tests and benchmarks.
- `cli`: `python -m foley_lab train|eval`.
"""
