"""Tokens that let a browser come back to the autosave the server made for it, and nothing else.

The browser keeps its autosaves in its own storage, which it (or anyone driving it) can rewrite.
So it never holds a path: it holds `<id>.<signature>`, where `id` is the random name of a folder
the server created under its autosave root and `signature` is an HMAC of it with a per-server
secret (`autosave.key` beside the autosave root, under FOLEY_STUDIO_HOME, readable by the server's
user only). The server maps a token back to `root/<id>` only if the signature is right; a path, a
forged or altered token, or an id that is not a folder of the root maps to nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from foley_core.atomic import atomic_path

__all__ = ["AutosaveTokens", "new_autosave_id"]

_ID = re.compile(r"[0-9a-f]{32}")
_KEY_BYTES = 32


def new_autosave_id() -> str:
    """A fresh autosave folder name: 128 random bits, unrelated to any other id the server uses."""
    return secrets.token_hex(16)


class AutosaveTokens:
    """Sign autosave folder ids of `root`, and map signed tokens back to folders of `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.key_path = self.root.parent / f"{self.root.name}.key"
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        if self._key is None:
            self._key = _read_or_create_key(self.key_path)
        return self._key

    def token(self, autosave_id: str) -> str:
        if not _ID.fullmatch(autosave_id):
            raise ValueError(f"not an autosave id: {autosave_id!r}")
        sig = hmac.new(self._secret(), autosave_id.encode("ascii"), hashlib.sha256).hexdigest()
        return f"{autosave_id}.{sig}"

    def folder(self, token: object) -> Path | None:
        """The autosave folder a token names, or None for anything that is not a valid token
        of this server (wrong type, a path, a bad signature) or whose folder does not exist."""
        if not isinstance(token, str) or len(token) > 200:
            return None
        autosave_id, _, sig = token.partition(".")
        if not _ID.fullmatch(autosave_id) or not sig:
            return None
        if not hmac.compare_digest(self.token(autosave_id), token):
            return None
        folder = self.root / autosave_id
        # The server made it as a plain folder; a symlink put there since is not followed.
        if folder.is_symlink() or not folder.is_dir():
            return None
        return folder


def _read_or_create_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) == _KEY_BYTES:
        return key
    if key:
        raise OSError(f"{path} is not an autosave key ({len(key)} bytes); remove it and restart "
                      "(browsers then lose their autosave offers, not the autosaves)")
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    with atomic_path(candidate) as tmp:
        tmp.write_bytes(secrets.token_bytes(_KEY_BYTES))
        os.chmod(tmp, 0o600)
    try:
        # link, not replace: two servers starting together must end up with the same key
        os.link(candidate, path)
    except FileExistsError:
        pass
    finally:
        candidate.unlink()
    return _read_or_create_key(path)
