"""The user's own sound folders: a library of the bundled clips plus folders, and the folder list
the studio keeps in the user's settings.

The list lives in the user's settings (`$FOLEY_STUDIO_HOME/settings.json`, default
`~/.foley-studio/settings.json`), not in a project: a sound designer's library belongs to them and
to the machine, and serves every project, as a sound-effects browser's database does; a project
already keeps a copy of each of the user's sounds a stem was made from, so it opens elsewhere
without the folder. The command line never reads this list: a command names its folders
(`--folder`, `--library-folder`), so the same command gives the same result on any machine.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Sequence

from foley_core.atomic import write_text_atomic
from foley_core.errors import FoleyError, MediaError
from foley_core.library.catalog import FolderScan, SoundLibrary, default_library

__all__ = ["settings_file", "saved_folders", "save_folders", "library_with_folders", "folder_key", "SavedFolders"]

log = logging.getLogger(__name__)

SETTINGS_NAME = "settings.json"
FOLDERS_KEY = "library_folders"


def settings_file() -> Path:
    """`$FOLEY_STUDIO_HOME/settings.json` (default `~/.foley-studio/settings.json`)."""
    home = os.environ.get("FOLEY_STUDIO_HOME") or os.path.join("~", ".foley-studio")
    return Path(home).expanduser() / SETTINGS_NAME


def folder_key(path: str | os.PathLike) -> str:
    """A folder as the library and the settings name it: absolute, `~` expanded, links resolved."""
    return str(Path(path).expanduser().resolve())


def _read_settings() -> dict:
    file = settings_file()
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        # settings are a convenience: a damaged file must not stop the studio from starting
        log.warning("ignoring the unreadable settings file %s: %s", file, err)
        return {}
    return data if isinstance(data, dict) else {}


def saved_folders() -> list[str]:
    """The sound folders the user added in the studio, in the order added."""
    folders = _read_settings().get(FOLDERS_KEY)
    if not isinstance(folders, list):
        return []
    return list(dict.fromkeys(str(f) for f in folders if isinstance(f, str) and f.strip()))


def save_folders(folders: Sequence[str | os.PathLike]) -> None:
    """Remember `folders` in the user's settings (other settings kept)."""
    data = _read_settings()
    data[FOLDERS_KEY] = list(dict.fromkeys(folder_key(f) for f in folders))
    file = settings_file()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(file, json.dumps(data, indent=2) + "\n")
    except OSError as err:
        raise FoleyError(f"Cannot save your sound folders in '{file}': {err.strerror or err}.") from None


def library_with_folders(folders: Sequence[str | os.PathLike] = (), *,
                         option: str = "") -> SoundLibrary:
    """The bundled library plus `folders` (the bundled one itself without folders). Every folder
    must exist and hold usable sounds; files that cannot be read are skipped (the library's
    `warnings` and `scans` say which). `option` (e.g. '--library-folder') prefixes errors."""
    if not folders:
        return default_library()
    lib = SoundLibrary()
    for folder in folders:
        try:
            lib.add_folder(folder)
        except MediaError as err:
            raise type(err)(f"{option}: {err}" if option else str(err)) from None
    return lib


class SavedFolders:
    """The studio's library: the bundled clips plus the folders saved in the user's settings,
    built on first use and shared by the process (the app is local; the folders are the user's).
    A saved folder that cannot be read now (an unplugged drive) stays saved and is listed with
    the reason (`problems`), so it is back once the drive is."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._library: SoundLibrary | None = None      # None: no folder, the bundled library alone
        self._built = False
        self.problems: dict[str, str] = {}
        # Paths typed in the page name folders on the server's machine: the server sets this
        # False when it listens beyond loopback (`serve --host 0.0.0.0`, `--share`).
        self.browser_may_add = True

    def library(self) -> SoundLibrary:
        with self._lock:
            if not self._built:
                self._built = True
                folders = saved_folders()
                if folders:
                    self._library = SoundLibrary()
                    for folder in folders:
                        try:
                            self._library.add_folder(folder)
                        except MediaError as err:
                            self.problems[folder_key(folder)] = str(err)
            return self._library if self._library is not None else default_library()

    def add(self, path: str | os.PathLike) -> FolderScan:
        """Index a folder, add it to the library and remember it; returns what the scan read.
        MediaError (nothing saved) for a missing folder, a file, or no usable sound in it."""
        self._check_allowed()
        if path is None or not str(path).strip():
            raise MediaError("Type the path of a folder of sounds on this machine, e.g. ~/Sounds/Foley.")
        self.library()
        with self._lock:
            # a new library object: the bundled one stays as the rest of the process knows it
            lib = self._library if self._library is not None else SoundLibrary()
            scan = lib.index_folder(str(path).strip())
            self._library = lib
            key = str(scan.folder)
            self.problems.pop(key, None)
            save_folders([*saved_folders(), key])
        return scan

    def remove(self, path: str | os.PathLike) -> None:
        """Forget a saved folder (its files are untouched)."""
        self._check_allowed()
        key = folder_key(path)
        with self._lock:
            saved = saved_folders()
            if key not in {folder_key(f) for f in saved}:
                raise FoleyError(f"'{path}' is not one of your sound folders.")
            if self._library is not None:
                self._library.remove_folder(key)
            self.problems.pop(key, None)
            save_folders([f for f in saved if folder_key(f) != key])

    def _check_allowed(self) -> None:
        if not self.browser_may_add:
            raise FoleyError("This studio is open to other machines, so it does not read folder paths "
                             "typed in the page. Add folders in a studio served to this machine only "
                             "(without --host or --share): the folders it keeps are searched here too.")

    def folders(self) -> list[tuple[str, str]]:
        """(folder, what it holds now: "N sounds" or why it is not searched) of each saved folder."""
        lib = self.library()
        out = []
        for folder in saved_folders():
            key = folder_key(folder)
            problem = self.problems.get(key)
            scan = lib.scans.get(key)
            if problem or scan is None:
                out.append((key, f"not searched: {problem or 'not read yet'}"))
            else:
                skipped = f", {scan.unreadable} unreadable file(s) skipped" if scan.unreadable else ""
                out.append((key, f"{scan.usable} sounds{skipped}"))
        return out
