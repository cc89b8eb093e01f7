"""Atomic file writes and temporary files that never outlive their process.

Write to a temporary file in the destination's folder, then `os.replace` it onto the target,
which is atomic on POSIX and Windows filesystems.

Temporary files are named after the process that made them (`.foley-tmp-<pid>-...` beside a
target, `<tmp>/foley-work-<pid>-...` for work folders), so a process that was killed before it
could clean up (SIGKILL, a power cut) leaves files that the next write into the same folder, or
the next process, recognises as stale (their pid is dead) and removes. SIGTERM is turned into an
exception by `terminate_raises()` so that every context manager cleans up on the way out.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator

TEMP_PREFIX = ".foley-tmp-"      # + "<pid>-": files beside a target, being written
WORK_PREFIX = "foley-work-"      # + "<pid>-": this process's folder in the system temp folder
_MAX_NAME_PART = 80              # keeps temp names within NAME_MAX for long target names


def _read_umask() -> int:
    # os.umask can only be read by setting it: do it once, at import, not in (threaded) writes.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # alive, another user's
        return True
    except OSError:
        return True              # cannot tell: keep its files
    return True


def _stale_pid(name: str, prefix: str) -> bool:
    """True when `name` is `<prefix><pid>-...` of a process that no longer runs."""
    if not name.startswith(prefix):
        return False
    pid_text = name[len(prefix):].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not _pid_alive(pid)


def _stale_entries(folder: str | os.PathLike, prefix: str) -> list[os.DirEntry]:
    """The entries of `folder` named `<prefix><pid>-*` whose process is dead (none if unreadable)."""
    try:
        return [e for e in os.scandir(folder) if _stale_pid(e.name, prefix)]
    except OSError:
        return []


def sweep_stale_temps(folder: str | os.PathLike) -> int:
    """Remove the `.foley-tmp-<pid>-*` files a dead process left in `folder`; return how many."""
    removed = 0
    for entry in _stale_entries(folder, TEMP_PREFIX):
        try:
            if entry.is_dir(follow_symlinks=False):
                continue
            os.unlink(entry.path)
            removed += 1
        except OSError:
            pass         # gone already, or not ours to remove
    return removed


def sweep_stale_work_dirs(base: str | os.PathLike | None = None) -> int:
    """Remove this user's `foley-work-<pid>-*` folders whose process is dead; return how many."""
    base = Path(base) if base is not None else Path(tempfile.gettempdir())
    removed = 0
    for entry in _stale_entries(base, WORK_PREFIX):
        try:
            if not (entry.is_dir(follow_symlinks=False)
                    and entry.stat(follow_symlinks=False).st_uid == os.getuid()):
                continue
        except OSError:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


_work_root: Path | None = None
_work_root_lock = threading.Lock()


def _remove_work_root(path: Path, pid: int) -> None:
    if os.getpid() == pid:       # not from a forked child that inherited the atexit hook
        shutil.rmtree(path, ignore_errors=True)


def work_root() -> Path:
    """This process's private folder for work files (created on first use, removed at exit)."""
    global _work_root
    with _work_root_lock:
        if _work_root is None or not _work_root.is_dir():
            sweep_stale_work_dirs()
            _work_root = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-"))
            atexit.register(_remove_work_root, _work_root, os.getpid())
        return _work_root


@contextlib.contextmanager
def work_dir(prefix: str = "") -> Iterator[Path]:
    """A temporary folder inside `work_root()`, removed when the block ends (also on an error)."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=work_root()) as folder:
        yield Path(folder)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`.

    On any exception the temporary file is removed and `target` is left as it was.
    `suffix` defaults to the target's own suffix so that tools that pick a format by file
    extension (ffmpeg, soundfile) still do so. Stale temporary files of dead processes in the
    target's folder are removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target.parent)
    suffix = suffix if suffix is not None else target.suffix
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-",
                               suffix=f".{target.stem[:_MAX_NAME_PART]}{suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes 0600 files; outputs should get the usual permissions (0666 minus umask).
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_DIR_SUFFIX = ".dir"


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it is renamed to `target`.

    `target` must not exist, or be an empty folder (a rename replaces only an empty one), so a
    folder of outputs never mixes with what was there. On any exception the temporary folder and
    everything in it is removed. Such folders left by a dead process are removed first.
    """
    target = Path(target)
    for entry in _stale_entries(target.parent, TEMP_PREFIX):
        if entry.name.endswith(_DIR_SUFFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-",
                                suffix=f".{target.name[:_MAX_NAME_PART]}{_DIR_SUFFIX}", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM (see `terminate_raises`); exit code 128 + 15."""


@contextlib.contextmanager
def terminate_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated`, so temporary files and folders are removed
    and child processes are stopped by the context managers that own them (subprocess.run kills
    its child when interrupted). A second SIGTERM during that cleanup is ignored. Outside the
    main thread (where Python cannot handle signals) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
