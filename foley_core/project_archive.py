"""Project archives: a project folder as one .zip to download, and the checked way back in.

An archive may come from anyone (the studio's "Open a project" takes uploads), so opening one
never trusts it: every member is checked BEFORE anything is written (a relative path that stays
inside the folder, no symlinks, no more than MAX_ARCHIVE_FILES files, MAX_ARCHIVE_UNPACKED_BYTES
in all, no member that inflates more than MAX_ARCHIVE_RATIO times), each file is then written
atomically while the bytes actually inflated are counted (a header may lie), and on any error the
folder is removed, so nothing is left behind.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from foley_core import constants
from foley_core.atomic import atomic_path
from foley_core.errors import ProjectError

__all__ = ["save_archive", "check_archive", "extract_archive", "open_project_file", "project_slug",
           "MAX_ARCHIVE_FILES", "MAX_ARCHIVE_UNPACKED_BYTES", "MAX_ARCHIVE_RATIO"]

MAX_ARCHIVE_FILES = constants.MAX_ARCHIVE_FILES
MAX_ARCHIVE_UNPACKED_BYTES = constants.MAX_ARCHIVE_UNPACKED_BYTES
MAX_ARCHIVE_RATIO = constants.MAX_ARCHIVE_RATIO
# Small members (project.json, mask PNGs) may compress well beyond the ratio without harm: the
# total bounds them anyway; the ratio only flags big members, the shape of a zip bomb.
_RATIO_FLOOR_BYTES = 1024 * 1024
_CHUNK_BYTES = 1024 * 1024
# Already-compressed or incompressible content is stored as is: deflating it saves nothing, and
# a stored member can never look like a bomb (ratio 1), whatever its audio holds (silence).
_STORED_SUFFIXES = {".wav", ".mp4", ".mov", ".mkv", ".webm", ".avi", ".png", ".flac", ".mp3",
                    ".ogg", ".m4a"}


def save_archive(project, out: str | Path, *, staging_dir: str | Path) -> Path:
    """Save `project` (with its video) into `staging_dir/<name>` and zip that folder as `out`,
    atomically. Members are `<name>/...`, so the archive unpacks into one folder."""
    from foley_core import project as fproject

    out, staging_dir = Path(out), Path(staging_dir)
    name = project_slug(project.name or "project")
    folder = staging_dir / name
    if folder.exists():
        shutil.rmtree(folder)
    fproject.save_project(project, folder, copy_video=project.video_path is not None)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    method = zipfile.ZIP_STORED if f.suffix.lower() in _STORED_SUFFIXES \
                        else zipfile.ZIP_DEFLATED
                    zf.write(f, (Path(name) / f.relative_to(folder)).as_posix(),
                             compress_type=method)
    return out


def _member_path(info: zipfile.ZipInfo, archive_name: str) -> PurePosixPath:
    """The member's relative path, or ProjectError if it could land outside the folder."""
    raw = info.filename
    bad = f"{archive_name} holds a file outside its folder ({raw!r}); it is not a studio project."
    if not raw or "\\" in raw or "\x00" in raw or raw.startswith("/") or \
            (len(raw) > 1 and raw[1] == ":"):
        raise ProjectError(bad)
    path = PurePosixPath(raw)
    if any(part in ("..", "") for part in path.parts) or path.is_absolute():
        raise ProjectError(bad)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ProjectError(f"{archive_name} holds a symbolic link ({raw!r}); a studio project "
                           "has none.")
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ProjectError(f"{archive_name} holds a special file ({raw!r}); it is not a studio "
                           "project.")
    return path


def check_archive(zf: zipfile.ZipFile, archive_name: str) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every member checked before anything is extracted (see the module docstring); returns
    the (member, relative path) pairs of its files."""
    members = zf.infolist()
    if len(members) > MAX_ARCHIVE_FILES:
        raise ProjectError(f"{archive_name} holds {len(members)} files; a studio project has at "
                           f"most {MAX_ARCHIVE_FILES}.")
    total = 0
    checked, seen = [], set()
    for info in members:
        path = _member_path(info, archive_name)
        if info.is_dir():
            continue
        if path in seen:
            raise ProjectError(f"{archive_name} holds {info.filename!r} twice; it is not a "
                               "studio project.")
        seen.add(path)
        total += info.file_size
        if total > MAX_ARCHIVE_UNPACKED_BYTES:
            raise ProjectError(f"{archive_name} unpacks to more than "
                               f"{_mb(MAX_ARCHIVE_UNPACKED_BYTES)}; a studio project is at most that.")
        if info.file_size > _RATIO_FLOOR_BYTES and \
                info.file_size > MAX_ARCHIVE_RATIO * max(1, info.compress_size):
            raise ProjectError(f"{archive_name}: {info.filename!r} inflates "
                               f"{info.file_size / max(1, info.compress_size):.0f} times (more than "
                               f"{MAX_ARCHIVE_RATIO}); it is not a studio project.")
        if info.flag_bits & 0x1:
            raise ProjectError(f"{archive_name} is encrypted; a studio project is not.")
        checked.append((info, path))
    return checked


def extract_archive(path: str | Path, dest: str | Path) -> Path:
    """Unpack a project archive into `dest` (which must not exist yet) after check_archive;
    return the folder holding its project.json. On any error `dest` is removed."""
    path, dest = Path(path), Path(dest)
    if dest.exists():
        raise FileExistsError(dest)        # a caller's bug: extraction never merges folders
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ProjectError(f"{path.name} is not a studio project ({err}): choose the .zip saved "
                           "with 'Save project'.") from None
    try:
        with zf:
            members = check_archive(zf, path.name)
            dest.mkdir(parents=True)
            written = 0
            for info, rel in members:
                target = dest.joinpath(*rel.parts)
                with zf.open(info) as src, atomic_path(target) as tmp, open(tmp, "wb") as out:
                    left = info.file_size
                    while True:
                        chunk = src.read(_CHUNK_BYTES)
                        if not chunk:
                            break
                        left -= len(chunk)
                        written += len(chunk)
                        # the header's size is what was checked: more bytes is a forged header
                        if left < 0 or written > MAX_ARCHIVE_UNPACKED_BYTES:
                            raise ProjectError(f"{path.name}: {info.filename!r} holds more than its "
                                               "header says; it is not a studio project.")
                        out.write(chunk)
        found = sorted(dest.rglob("project.json"), key=lambda p: len(p.parts))
        if not found:
            raise ProjectError(f"{path.name} has no project.json: choose a zip saved with "
                               "'Save project'.")
        return found[0].parent
    except (zipfile.BadZipFile, NotImplementedError, EOFError) as err:
        shutil.rmtree(dest, ignore_errors=True)
        raise ProjectError(f"{path.name} is damaged ({err}): choose the .zip saved with "
                           "'Save project'.") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def open_project_file(path: str | Path, dest: str | Path):
    """Load a project from a project.json (its folder is read in place) or an archive (unpacked
    into `dest` by extract_archive). An archive whose project does not load is removed again."""
    from foley_core import project as fproject

    path, dest = Path(path), Path(dest)
    if path.suffix.lower() == ".json":
        return fproject.load_project(path.parent)
    if not zipfile.is_zipfile(path):
        raise ProjectError(f"{path.name} is not a studio project: choose the .zip saved with "
                           "'Save project'.")
    folder = extract_archive(path, dest)
    try:
        return fproject.load_project(folder)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1024**2:.0f} MB"


def project_slug(text: str) -> str:
    """A project's name as a file-name part: 'My Film!' -> 'my-film' ('project' if empty)."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return s[:40] or "project"
