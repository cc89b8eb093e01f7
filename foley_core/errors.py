"""Exceptions whose messages are written for the user.

Every failure a user can cause (a bad file, a bad curve, a missing model) raises a subclass of
`FoleyError`; the UI shows `str(err)` as a message and the CLI prints it as one line on stderr
with exit code 2. Anything else is a bug and may surface as a traceback in logs only.
"""


class FoleyError(Exception):
    """Base class: the message is shown to the user verbatim."""


class MediaError(FoleyError):
    """A video or audio file cannot be read, or is outside the supported limits."""


class TimeRangeError(FoleyError):
    """A requested time range lies outside the media, or is empty."""


class CurveError(FoleyError):
    """A loudness curve is malformed (NaN/inf, negative, too few points, ...)."""


class OnsetError(FoleyError):
    """Onset times (hits) that cannot be used: not a list of times, or outside the selection."""


class CaptionError(FoleyError):
    """A caption is empty or unusable."""


class MaskError(FoleyError):
    """A mask, box or track does not fit the video."""


class MixError(FoleyError):
    """A mix setting (pan, gain, fade, loudness target, ceiling) or an audio buffer is unusable."""


class ExportError(FoleyError):
    """An export cannot be made (nothing to export, no video for an MP4, an unwritable path)."""


class SimulationError(FoleyError):
    """A simulated scene cannot be built from the given sounds (e.g. their events cannot be separated)."""


class ProjectError(FoleyError):
    """A project folder is damaged, foreign, or from an unsupported version."""


class NothingToUndo(ProjectError):
    """Undo or redo was asked for with no step left."""


class ModelUnavailableError(FoleyError):
    """Model weights are missing or cannot be fetched (e.g. offline without a local copy)."""


class GenerationCancelled(FoleyError):
    """The user cancelled a running generation."""
