"""YOLO-World open-vocabulary detection (ultralytics) with a CLIP text side from transformers.

YOLO-World scores boxes against text embeddings of the vocabulary. Ultralytics computes those
with OpenAI's `clip` package (installed from git, not from PyPI) and CLIP ViT-B/32 weights fetched
at run time; here the same embeddings come from transformers' `CLIPTextModelWithProjection`
(openai/clip-vit-base-patch32: the same weights, the same tokenizer, L2-normalised as ultralytics
does), so no extra package is needed and the model can live in a local folder.

Nothing is downloaded unless downloads are allowed (`FOLEY_ALLOW_DOWNLOADS=1` /
`--allow-downloads`): a missing file raises `ModelUnavailableError` at once instead of letting
ultralytics try the network (its asset download ignores YOLO_OFFLINE).

Weights, in order: the `weights` argument, `$FOLEY_YOLO_WORLD_WEIGHTS`, `yolov8s-worldv2.pt` in
ultralytics' weights folder, then (downloads allowed) ultralytics' release asset.
Text encoder: the `text_encoder` argument (a path or hub id), `$FOLEY_CLIP_TEXT_MODEL`, then
openai/clip-vit-base-patch32 from the Hugging Face cache (or the hub, downloads allowed). Without
a text encoder, words the checkpoint already has embeddings for (its 80 COCO names) still work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from foley_core import offline
from foley_core.errors import CaptionError, ModelUnavailableError
from foley_core.vision.tracks import Detection, mask_to_rle

YOLO_SOURCE = "yolo-world"
WEIGHTS_ENV = "FOLEY_YOLO_WORLD_WEIGHTS"
CLIP_ENV = "FOLEY_CLIP_TEXT_MODEL"
DEFAULT_WEIGHTS = "yolov8s-worldv2.pt"
CLIP_HUB_ID = "openai/clip-vit-base-patch32"
_FALLBACK_HINT = "the motion fallback (--method motion) needs no weights"


def import_ultralytics() -> None:
    """Import ultralytics, then undo its process-wide `PIL.Image.open` patch.

    On any image Pillow cannot identify, that patch tries to pip-install pi-heif (a network call
    from inside the app) and turns the user's "not an image" error into ModuleNotFoundError.
    """
    import ultralytics  # noqa: F401
    from PIL import Image
    from ultralytics.utils import patches

    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


# --------------------------------------------------------------------------- weights

def _ultralytics_weights_dir() -> Path:
    import_ultralytics()
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["weights_dir"])


def resolve_weights(weights: str | os.PathLike | None = None) -> str:
    """Path of the YOLO-World checkpoint to load (see the module docstring for the order).

    Raises ModelUnavailableError, without touching the network, when no file is found and
    downloads are not allowed.
    """
    chosen = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if chosen is not None:
        path = Path(chosen).expanduser()
        where = "--weights" if weights is not None else f"${WEIGHTS_ENV}"
        if not path.exists():
            raise ModelUnavailableError(
                f"YOLO-World weights not found at {path} (from {where}); point it to a "
                f"{DEFAULT_WEIGHTS} file, or use {_FALLBACK_HINT}."
            )
        # ultralytics asserts on the suffix and torch reads a FIFO forever: refuse both here
        if not path.is_file() or path.suffix.lower() != ".pt":
            raise ModelUnavailableError(
                f"{path} (from {where}) is not a YOLO-World checkpoint: give a .pt file such as "
                f"{DEFAULT_WEIGHTS}; {_FALLBACK_HINT}."
            )
        return str(path)
    for folder in (_ultralytics_weights_dir(), Path.cwd()):
        if (folder / DEFAULT_WEIGHTS).is_file():
            return str(folder / DEFAULT_WEIGHTS)
    if offline.downloads_allowed():
        return DEFAULT_WEIGHTS            # ultralytics fetches its release asset
    raise ModelUnavailableError(
        f"Object detection needs the YOLO-World weights ({DEFAULT_WEIGHTS}, about 25 MB), which are "
        f"not on this machine and downloads are off. Download them once and set {WEIGHTS_ENV} "
        f"(or --weights) to the file, or run with --allow-downloads; meanwhile {_FALLBACK_HINT}."
    )


def configured_weights() -> str | None:
    """The YOLO-World checkpoint this machine has (`$FOLEY_YOLO_WORLD_WEIGHTS`, or the default
    file in ultralytics' weights folder or here), or None: never a download. A set but wrong
    `$FOLEY_YOLO_WORLD_WEIGHTS` raises ModelUnavailableError (the user asked for it)."""
    if os.environ.get(WEIGHTS_ENV):
        return resolve_weights()
    for folder in (_ultralytics_weights_dir(), Path.cwd()):
        if (folder / DEFAULT_WEIGHTS).is_file():
            return str(folder / DEFAULT_WEIGHTS)
    return None


def follow_detector(words: Sequence[str] = (), **kwargs) -> "YoloWorldDetector | None":
    """A detector for `follow.follow_in_video` when YOLO-World weights are on this machine,
    else None (the follower then works alone). It looks for `words` (the caption's nouns) and
    the checkpoint's own class names; without a CLIP text encoder, for its own names only."""
    path = configured_weights()
    if path is None:
        return None
    detector = YoloWorldDetector.from_pretrained(path, **kwargs)
    own = list(detector._stored)
    vocab = list(dict.fromkeys([*(w.strip().lower() for w in words if w and w.strip()), *own]))
    try:
        detector.set_vocabulary(vocab)
    except (ModelUnavailableError, CaptionError):
        if not own:
            return None          # nothing it can look for: the tracker alone
        detector.set_vocabulary(own)
    return detector


def load_world_model(weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """Load a YOLO-World (ultralytics WorldModel) checkpoint in eval mode on the CPU."""
    import_ultralytics()
    from ultralytics.nn.tasks import WorldModel, load_checkpoint

    path = resolve_weights(weights)
    try:
        model, _ = load_checkpoint(path)
    except Exception as err:  # noqa: BLE001 - unpickling a foreign file can raise anything
        reason = (str(err).splitlines() or [type(err).__name__])[0].rstrip(".")
        raise ModelUnavailableError(
            f"Cannot load YOLO-World weights from {path}: {reason}. "
            f"Download {DEFAULT_WEIGHTS} again, or use {_FALLBACK_HINT}."
        ) from None
    if not isinstance(model, WorldModel):
        raise ModelUnavailableError(
            f"{path} holds a {type(model).__name__}, not a YOLO-World model; use {DEFAULT_WEIGHTS}."
        )
    return model.eval()


# --------------------------------------------------------------------------- text side

class ClipTextEncoder:
    """CLIP ViT-B/32 text embeddings (1, n, 512), L2-normalised, as YOLO-World expects."""

    def __init__(self, tokenizer, model) -> None:
        self.tokenizer = tokenizer
        self.model = model.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None) -> "ClipTextEncoder":
        source = str(name_or_path or os.environ.get(CLIP_ENV) or CLIP_HUB_ID)
        local_only = not offline.downloads_allowed()

        def unavailable(why: str) -> ModelUnavailableError:
            return ModelUnavailableError(
                f"YOLO-World needs the CLIP text encoder ({CLIP_HUB_ID}) to read the words you "
                f"typed, and {why}. Save it with transformers' save_pretrained and set {CLIP_ENV} "
                f"to that folder, or run with --allow-downloads; {_FALLBACK_HINT}."
            )

        # fail fast, before the slow transformers import, when the files are plainly not there
        is_path = (Path(source).expanduser().exists() or source.startswith((".", "~", "/", "\\"))
                   or source.count("/") > 1)           # a hub id is "owner/name"
        if is_path:
            if not (Path(source).expanduser() / "config.json").is_file():
                raise unavailable(f"there is no saved model in the folder {source}")
            source = str(Path(source).expanduser())
        elif local_only:
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(source, "config.json"), str):
                raise unavailable(f"'{source}' is not in the Hugging Face cache and downloads are off")

        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        try:
            tokenizer = CLIPTokenizer.from_pretrained(source, local_files_only=local_only)
            model = CLIPTextModelWithProjection.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as err:
            why = str(err).splitlines()[0][:160]
            raise unavailable(f"it cannot be loaded from '{source}' ({why})") from None
        return cls(tokenizer, model)

    @torch.no_grad()
    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        feats = self.model(**tokens).text_embeds
        feats = feats / feats.norm(p=2, dim=-1, keepdim=True)
        return feats.reshape(1, len(texts), -1).float()


# --------------------------------------------------------------------------- detector

class YoloWorldDetector:
    """Open-vocabulary boxes for RGB frames with an ultralytics YOLO-World model.

    Example (offline tests build a random model from the yaml and give text features directly):
        >>> from ultralytics.nn.tasks import WorldModel
        >>> det = YoloWorldDetector(WorldModel("yolov8s-worldv2.yaml", verbose=False))
        >>> det.set_vocabulary(["ball"], txt_feats=torch.randn(1, 1, 512))
        >>> boxes = det.detect(frames)            # list (per frame) of Detection
    """

    def __init__(self, model: torch.nn.Module, *,
                 text_encoder: ClipTextEncoder | str | os.PathLike | None = None,
                 imgsz: int = 640, conf: float = 0.1, iou: float = 0.5, max_det: int = 50) -> None:
        """text_encoder: an encoder, or where to load one from on first need (None: see the
        module docstring). conf: minimum box score; iou: NMS overlap; imgsz: input side."""
        self.model = model.eval()
        self._text_encoder = text_encoder
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_det = int(max_det)
        self.vocabulary: list[str] = []
        # the embeddings the checkpoint was saved with (COCO names for the released weights)
        names = getattr(model, "names", None) or {}
        names = list(names.values()) if isinstance(names, dict) else list(names)
        stored = getattr(model, "txt_feats", None)
        self._stored: dict[str, torch.Tensor] = {}
        if isinstance(stored, torch.Tensor) and stored.ndim == 3 and stored.shape[1] == len(names):
            self._stored = {str(n).lower(): stored[0, i] for i, n in enumerate(names)}

    @classmethod
    def from_pretrained(cls, weights: str | os.PathLike | None = None, *,
                        text_encoder: str | os.PathLike | ClipTextEncoder | None = None,
                        **kwargs) -> "YoloWorldDetector":
        """Load the weights; the text encoder is loaded on first need (see `set_vocabulary`)."""
        return cls(load_world_model(weights), text_encoder=text_encoder, **kwargs)

    def _encoder(self) -> ClipTextEncoder:
        if not isinstance(self._text_encoder, ClipTextEncoder):
            self._text_encoder = ClipTextEncoder.from_pretrained(self._text_encoder)
        return self._text_encoder

    def set_vocabulary(self, vocabulary: Sequence[str], *, txt_feats: torch.Tensor | None = None) -> None:
        """Classes to look for. txt_feats (1, n, 512) overrides the text encoder (tests, caches)."""
        vocab = list(dict.fromkeys(v.strip() for v in vocabulary if v and v.strip()))
        if not vocab:
            raise CaptionError(
                "Object detection needs something to look for: type classes (e.g. 'dog, car door') "
                "or a caption that names the object."
            )
        if txt_feats is None:
            # the checkpoint's own names were embedded by the same CLIP model: no encoder needed
            known = [self._stored.get(v.lower()) for v in vocab]
            if all(k is not None for k in known):
                txt_feats = torch.stack(known)[None]
            else:
                try:
                    txt_feats = self._encoder()(vocab)
                except ModelUnavailableError as err:
                    missing = [v for v, k in zip(vocab, known) if k is None]
                    raise ModelUnavailableError(
                        f"{err} Without it only the checkpoint's own class names work; these are "
                        f"not among them: {', '.join(missing)}."
                    ) from None
        txt_feats = torch.as_tensor(txt_feats, dtype=torch.float32)
        if txt_feats.ndim == 2:
            txt_feats = txt_feats[None]
        if txt_feats.shape[:2] != (1, len(vocab)):
            raise ValueError(f"txt_feats must be (1, {len(vocab)}, D); got {tuple(txt_feats.shape)}")
        self.model.txt_feats = txt_feats
        self.model.model[-1].nc = len(vocab)
        self.model.names = dict(enumerate(vocab))
        self.vocabulary = vocab

    def _letterbox(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        import_ultralytics()
        from ultralytics.data.augment import LetterBox

        stride = int(max(self.model.stride)) if hasattr(self.model, "stride") else 32
        box = LetterBox(new_shape=(self.imgsz, self.imgsz), auto=True, stride=stride)
        imgs = np.stack([box(image=np.ascontiguousarray(f)) for f in frames])
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0
        return x, imgs.shape[1:3]

    @torch.no_grad()
    def detect(self, frames: np.ndarray, *, batch_size: int = 4) -> list[list[Detection]]:
        """Detections per frame: boxes [x0, y0, x1, y1] in the frames' pixels, score, label."""
        import_ultralytics()
        from ultralytics.utils import nms, ops

        if not self.vocabulary:
            raise CaptionError("Set the vocabulary before detecting (set_vocabulary).")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (T, H, W, 3) RGB; got {frames.shape}")
        out: list[list[Detection]] = []
        h0, w0 = frames.shape[1:3]
        for i in range(0, len(frames), batch_size):
            x, shape = self._letterbox(frames[i:i + batch_size])
            preds = self.model(x)
            kept = nms.non_max_suppression(preds, self.conf, self.iou, max_det=self.max_det)
            for det in kept:
                det = det.cpu().numpy().astype(np.float64)
                boxes = ops.scale_boxes(shape, det[:, :4].copy(), (h0, w0))
                out.append([
                    Detection(box=b, score=float(s), label=self.vocabulary[int(c)])
                    for b, s, c in zip(boxes, det[:, 4], det[:, 5])
                ])
        return out


# --------------------------------------------------------------------------- masks inside boxes

def grabcut_mask(frame: np.ndarray, box: Sequence[float], *, iterations: int = 3,
                 max_side: int = 160) -> np.ndarray | None:
    """Tighter object region inside `box` with OpenCV GrabCut: bool (H, W), or None if it finds
    nothing (the caller then keeps the box). Runs on a crop with a margin, at most `max_side` px."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    bw, bh = x1 - x0, y1 - y0
    if bw < 4 or bh < 4:
        return None
    mx, my = 0.15 * bw + 2, 0.15 * bh + 2
    cx0, cy0 = int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my)))
    cx1, cy1 = int(min(w, np.ceil(x1 + mx))), int(min(h, np.ceil(y1 + my)))
    crop = frame[cy0:cy1, cx0:cx1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else crop
    rect = (int((x0 - cx0) * scale), int((y0 - cy0) * scale),
            max(1, int(bw * scale)), max(1, int(bh * scale)))
    mask = np.zeros(small.shape[:2], np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR), mask, rect,
                    bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    except cv2.error:
        return None          # degenerate colour model (e.g. a flat crop): keep the box
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    if fg.sum() == 0:
        return None
    fg = cv2.resize(fg, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST)
    full = np.zeros((h, w), bool)
    full[cy0:cy1, cx0:cx1] = fg > 0
    return full


def refine_detections(frames: np.ndarray, detections: list[list[Detection]], *,
                      scale: tuple[float, float] = (1.0, 1.0)) -> None:
    """Attach GrabCut masks (RLE over the frame grid) to detections whose boxes are in video
    pixels; `scale` maps video pixels to the frames' pixels."""
    sx, sy = scale
    for frame, dets in zip(frames, detections):
        for det in dets:
            mask = grabcut_mask(frame, det.box * np.array([sx, sy, sx, sy]))
            det.mask = None if mask is None else mask_to_rle(mask)
