"""Shared pytest fixtures: the read-only shared data folder, cached generated test media, and the
embedded backend on a tiny random model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SHARED_DIR = TESTS_DIR.parents[1] / "shared"   # the repo's sibling: /work/shared

if str(TESTS_DIR) not in sys.path:      # so that tests can `import media_fixtures`
    sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (sfx/, videos/, FACTS.md); the test is skipped when it is absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def media_factory(tmp_path_factory) -> Callable[..., Path]:
    """`media_factory("make_video", "clip.mp4", seconds=2, ...)` -> Path, made once per session.

    The first argument names a function of tests/media_fixtures.py that takes the output path
    first. Files are shared between tests: treat them as read-only.
    """
    import media_fixtures

    root = tmp_path_factory.mktemp("media")
    cache: dict[tuple, Path] = {}

    def make(kind: str, name: str, **kwargs) -> Path:
        key = (kind, name, repr(sorted(kwargs.items())))
        if key not in cache:
            folder = root / f"{len(cache):03d}"
            folder.mkdir()
            cache[key] = getattr(media_fixtures, kind)(folder / name, **kwargs)
        return cache[key]

    return make


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Iterator[Path]:
    """The embedded backend on a tiny random model with a 2 s window (long selections are cheap),
    for the whole test module: `FOLEY_EMBEDDED_DIR` points at it and the backend cache is cleared
    before and after. Use it with `pytestmark = pytest.mark.usefixtures("tiny_model")`."""
    from foley_core.backends import clear_backends
    from foley_core.model.configs import write_tiny_model_dir

    folder = write_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"), window_s=2.0)
    mp = pytest.MonkeyPatch()
    mp.setenv("FOLEY_EMBEDDED_DIR", str(folder))
    clear_backends()
    yield folder
    clear_backends()
    mp.undo()


@pytest.fixture
def unet_inputs(monkeypatch) -> Callable:
    """`record(pipe)` -> a list that collects a copy of every latent batch `pipe.unet` is called
    with (one entry per UNet call: the CFG branches stacked on the batch axis)."""

    def record(pipe) -> list:
        seen = []
        original = pipe.unet.forward

        def spy(sample, timestep, **kw):
            seen.append(sample.clone())
            return original(sample, timestep, **kw)

        monkeypatch.setattr(pipe.unet, "forward", spy)
        return seen

    return record
