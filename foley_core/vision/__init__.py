"""Vision: proposed masks, tracks, loudness curves and contact times from a video.

- `detect_tracks(video, vocab=..., caption=..., method="auto"|"yolo-world"|"motion")` ->
  `TrackSet` (YOLO-World open-vocabulary boxes linked into tracks, or the offline motion
  fallback); `save_tracks` / `load_tracks` write and read its JSON (format in `tracks`).
- `track_masks(track, times_s, width, height)` -> (T, H, W) float32 masks at any frame times.
- `region_proposal(video, region)` / `region_motion(frames, times_s, region)` -> `MotionProposal`:
  a proposed loudness curve (relative 0..1 at 10 points/s) and contact times for a drawn mask, a box
  or a track.
- `follow.follow(frames, times_s, frame_index=, point=|box=)` -> `Track` of one clicked object at
  the video's own frame rate; `contacts.contact_events(centres, times_s)` -> contacts with
  sub-frame times and a confidence (`follow.track_contact_onsets` for a followed track).
"""

from foley_core.vision.curves import MotionProposal, contact_times, motion_energy, region_motion
from foley_core.vision.proposals import METHODS, detect_tracks, region_proposal, vocabulary
from foley_core.vision.tracks import (
    Detection, Track, TrackFrame, TrackSet, box_mask, link_detections, load_tracks, mask_to_rle,
    rle_to_mask, save_tracks, track_masks,
)

__all__ = [
    "METHODS", "Detection", "MotionProposal", "Track", "TrackFrame", "TrackSet", "box_mask",
    "contact_times", "detect_tracks", "link_detections", "load_tracks", "mask_to_rle",
    "motion_energy", "region_motion", "region_proposal", "rle_to_mask", "save_tracks",
    "track_masks", "vocabulary",
]
