"""Training and evaluation data: the captioned sound library, audio augmentation, and simulated
audio-visual scenes (see docs/SIMULATION.md). Submodules are imported where used:

- `sfx`: `SfxLibrary` over ../shared/sfx (manifest, 16 kHz clips, npz cache, cached onsets).
- `augment`: gain, time shift, length buckets, two-clip mixes; `SfxAudioDataset`,
  `bucket_batches`.
- `simulate`: `simulate_scene` / `simulate_sounds` (a target object that makes contact at the
  sound's onsets, distractors that do not), `make_selectivity_scene`, `render_scene_video`.
- `dataset`: `SimSceneDataset`, the (audio, caption, frames, masks, loudness) training items.
- `evalset`: `build_eval_set` / `python -m foley_lab.data.evalset`, the held-out scenes.
"""
