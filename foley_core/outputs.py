"""Output paths of a command, checked before any work starts.

A command that writes files must never destroy what it reads: every output is resolved (symlinks
and hard links included) and compared with every input and with every other output of the same
command; its suffix must match what is written; its folder must exist and be writable. All of
this is decided before the long work (a generation, a mix), so a mistake costs nothing.

Rule for folders: an output's folder must already exist (a typo in a folder name is refused, not
silently created), for every command alike.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

from foley_core.errors import ExportError

__all__ = ["OutputClashError", "same_file", "check_outputs", "check_output_folder"]


class OutputClashError(ExportError):
    """An output would overwrite an input, or two outputs of one command are the same file."""


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path.expanduser()))


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name one file: the same resolved path, or one inode (a hard link)."""
    a, b = Path(a), Path(b)
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:        # either does not exist (yet): then only the resolved paths can clash
        return False


def _check_folder(label: str, path: Path) -> None:
    if path.is_dir():
        raise ExportError(f"{label} '{path}' is a folder; give a file name")
    _check_parent(label, path)


def _check_parent(label: str, path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        raise ExportError(f"cannot write {label} '{path}': the folder '{parent}' does not exist")
    if not parent.is_dir():
        raise ExportError(f"cannot write {label} '{path}': '{parent}' is not a folder")
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ExportError(f"cannot write {label} '{path}': it exists and is not a regular file")
    # A real probe, not os.access: root passes os.access on a read-only mount or folder mode.
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as err:
        raise ExportError(f"cannot write {label} '{path}': the folder '{parent}' is not writable "
                          f"({err.strerror or err})") from None
    os.close(fd)
    os.unlink(probe)


def check_outputs(outputs: Mapping[str, str | os.PathLike],
                  inputs: Mapping[str, str | os.PathLike | Iterable[str | os.PathLike]] = (),
                  *, suffixes: Mapping[str, str | tuple[str, ...]] | None = None) -> dict[str, Path]:
    """Check a command's outputs against its inputs and each other; return them as Paths.

    `outputs` and `inputs` map a label the user knows (an option such as "--out", or "the
    project's stem 'door'") to a path; an input label may map to several paths (a project's
    files). `suffixes` maps an output label to the suffix (or suffixes) of what is written there.
    Raises `OutputClashError` or `ExportError` with a one-line message; writes nothing.
    """
    suffixes = suffixes or {}
    checked: dict[str, Path] = {}
    for label, value in outputs.items():
        path = Path(value).expanduser()
        allowed = suffixes.get(label)
        if allowed is not None:
            allowed = (allowed,) if isinstance(allowed, str) else tuple(allowed)
            if path.suffix.lower() not in allowed:
                raise ExportError(f"{label} writes {' or '.join(allowed)}: give a file name ending in "
                                  f"{' or '.join(allowed)}; got '{path.name}'")
        _check_folder(label, path)
        checked[label] = path

    labelled_inputs: list[tuple[str, Path]] = []
    for label, value in dict(inputs).items():
        values = [value] if isinstance(value, (str, os.PathLike)) else list(value)
        labelled_inputs += [(label, Path(v)) for v in values if v is not None]

    labels = list(checked)
    for i, label in enumerate(labels):
        path = checked[label]
        for in_label, in_path in labelled_inputs:
            if same_file(path, in_path):
                raise OutputClashError(f"{label} '{path}' is the same file as {in_label}: it would be "
                                       f"overwritten; choose another output name")
        for other in labels[i + 1:]:
            if same_file(path, checked[other]):
                raise OutputClashError(f"{label} and {other} are the same file '{path}'; give each "
                                       f"output its own name")
    return checked


def check_output_folder(label: str, value: str | os.PathLike,
                        other_outputs: Mapping[str, str | os.PathLike] = ()) -> Path:
    """Check a folder a command will create: it must not exist yet (or be empty, so nothing in it
    is overwritten or an input), its parent must be an existing writable folder, and no other
    output may be written inside it. Returns it as a Path; writes nothing."""
    path = Path(value).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ExportError(f"{label} '{path}' already exists and is not an empty folder; give a new folder "
                          "name (an export never writes over files)")
    if path.is_symlink():
        raise ExportError(f"{label} '{path}' is a link; give a new folder name")
    _check_parent(label, path)
    for other, other_path in dict(other_outputs).items():
        if _resolved(Path(other_path)).is_relative_to(_resolved(path)):
            raise OutputClashError(f"{other} '{other_path}' is inside {label} '{path}'; write it elsewhere")
    return path
