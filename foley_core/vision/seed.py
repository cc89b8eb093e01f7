"""Old import path of `foley_core.vision.proposals`, kept only while generate.py still imports
`work_size` / `analysis_fps_for` from here (that module is being split elsewhere); import from
`foley_core.vision.proposals`."""

from foley_core.vision.proposals import analysis_fps_for, work_size  # noqa: F401
