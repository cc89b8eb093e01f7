"""Fixed signal conventions shared by every module (the paper's audio and video rates)."""

MODEL_SR = 16_000          # the model's audio rate (Hz); its bandwidth is 8 kHz
N_MELS = 64
N_FFT = 1024
HOP_LENGTH = 160           # 100 mel frames per second at MODEL_SR
MEL_FPS = MODEL_SR // HOP_LENGTH

CURVE_FPS = 10             # loudness curve points per second (TLM)
VIDEO_FPS = 4              # frames per second seen by the Mask-Attention Module
VIDEO_SIZE = 224           # frame side for the model's visual encoder

EXPORT_SR = 48_000         # export rate for WAV/MP4
EXPORT_SUBTYPE = "PCM_24"  # 24-bit WAV

# Input limits: bigger files are refused with a clear message instead of exhausting memory.
MAX_VIDEO_SECONDS = 600.0
MAX_VIDEO_PIXELS = 3840 * 2160
MAX_GENERATION_SECONDS = 120.0

# A stem's mix settings: the one set of limits the studio's controls, project.json and render
# obey (a stem placed beyond the longest video would only ever be silent).
# field -> (label a user knows, lowest, highest)
MIX_LIMITS = {
    "gain_db": ("gain (dB)", -60.0, 24.0),
    "pan": ("pan", -1.0, 1.0),
    "offset_s": ("offset (s)", -MAX_VIDEO_SECONDS, MAX_VIDEO_SECONDS),
    "trim_start_s": ("trim start (s)", 0.0, MAX_VIDEO_SECONDS),
    "trim_end_s": ("trim end (s)", 0.0, MAX_VIDEO_SECONDS),
    "fade_in_s": ("fade in (s)", 0.0, 60.0),
    "fade_out_s": ("fade out (s)", 0.0, 60.0),
}
# Generation settings: what generate() accepts (the studio's sliders offer a part of it).
MAX_STEPS = 200
MAX_GUIDANCE_SCALE = 50.0          # text, video and curve guidance scales: 0..50
MAX_CANDIDATES = 16
# The defaults every caller shares (the CLI, the studio, batch, evaluation): the paper's
# dual-guidance scales and its sampler's step count.
DEFAULT_STEPS = 25
DEFAULT_TEXT_SCALE = 3.5
DEFAULT_VIDEO_SCALE = 4.5
# The seeds a user can ask for (the studio's dice, the CLI, batch): candidate i runs seed + i.
MAX_SEED = 2**31 - 1
# The shortest selection a stem is made for: one window-grid step (generate.WINDOW_GRID_S), so
# every window holds whole curve points, latent frames and video frames (windows.WINDOW_GRID_S).
MIN_SELECTION_S = 0.2
# span regeneration: the shortest span, and the equal-power crossfade placed just inside each
# of its edges (long enough to hide a waveform step, short enough to fit twice in the shortest span)
MIN_SPAN_S = 0.1
SPAN_CROSSFADE_S = 0.015
# A stem's audio: the longest a generation makes, with room for a whole video's worth.
MAX_STEM_SECONDS = MAX_VIDEO_SECONDS

# How far from a reference sound audio-to-audio generation starts (0 = the reference itself,
# 1 = ignore it). Chosen by the strength sweep's stated rule (`python -m foley_lab eval
# --reference-sweep --n-val 152`, docs/BENCHMARKS.md) on the shipped model, which restores the
# reference's detail (`reference_detail`): 0.2 and 0.4 keep identity (tagger balanced accuracy
# 0.348 / 0.357 against 0.378 on the real references, threshold 0.8 x real = 0.302); of those,
# 0.4 follows another clip's curve (median r 0.77) and the video's contacts (F1 0.65) best.
# Re-run the sweep when the model changes.
# Here rather than in generate.py so that the CLI's --help can show it without torch.
DEFAULT_REFERENCE_STRENGTH = 0.4

# A take's sample peak at most -1 dBFS before the mixer: headroom for the stem's gain, the sum of
# stems and inter-sample peaks, as delivery specs ask of stems (EBU R128 allows -1 dBTP).
TAKE_PEAK_DBFS = -1.0

# Where a stem's sound comes from when no reference is given: "auto" picks library clips for the
# caption when the model can start from a sound (retrieval: the default) and runs the model from
# noise otherwise; "library" insists on retrieval; "model" is the model alone ("from scratch").
SOURCES = ("auto", "library", "model")
# How a reference shorter than the selection is fitted (library.fit_reference): by its sound
# ("auto"), looped, or played once and padded with silence.
REFERENCE_FITS = ("auto", "loop", "oneshot")

# What a browser may send to the studio server. One upload (a video, a reference sound, a
# project archive) is at most MAX_UPLOAD_BYTES: a MAX_VIDEO_SECONDS video at ~7 Mbit/s (a
# 1080p camera file), a MAX_REFERENCE_SECONDS 96 kHz 24-bit stereo WAV (346 MB). Larger is
# refused before it is stored.
MAX_UPLOAD_BYTES = 512 * 1024**2
# A project archive unpacks to at most twice an upload (its video plus stems, masks and
# reference copies), in at most this many files, and no big member inflates more than this
# ratio (the studio stores its audio and video members uncompressed).
MAX_ARCHIVE_UNPACKED_BYTES = 2 * MAX_UPLOAD_BYTES
MAX_ARCHIVE_FILES = 2000
MAX_ARCHIVE_RATIO = 100
