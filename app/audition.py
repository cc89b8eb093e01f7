"""Playing the user's own sounds in the page: one HTTP route, `GET /foley/audition?id=CLIP_ID`.

The bundled library is public and served as static files; the user's folders are not, because a
file path is the wrong thing to trust. The route takes a clip id, looks it up in the studio's
library, and returns the file only when it is an indexed sound of one of the added folders whose
real path (symlinks resolved) is still inside that folder. An unknown id, a path the client made
up, or a link leading out of the folder gets 404. It answers only while the server listens on
loopback alone (`serve` without `--host` beyond it or `--share`: the same rule as typing a folder
path) and only to a client on this machine; otherwise 403 and the page says why.

A file the browser cannot decode (AIFF, CAF, W64, WMA, MKA) is played from a 16-bit WAV preview
made once per file version in the process's temp folder (removed at exit).
"""

from __future__ import annotations

import atexit
import hashlib
import ipaddress
import shutil
import tempfile
import threading
import urllib.parse
from pathlib import Path

from app import session
from foley_core.atomic import atomic_path
from foley_core.errors import FoleyError, MediaError
from foley_core.library.catalog import USER_CATEGORY

ROUTE = "/foley/audition"
# What Chromium, Firefox and Safari decode in an <audio> element (Safari: not ogg before 17);
# other formats are played from a WAV preview (user sounds) or show no play button (library).
BROWSER_AUDIO = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm"})
NOT_SERVED_REASON = ("Your own sounds do not play here: this studio is open to other machines, so "
                     "it serves no file from your folders (start it without --host or --share to "
                     "listen to them; 'Use' still plays one in the reference preview).")

_preview_lock = threading.Lock()
_preview_dir: Path | None = None


class NotServed(FoleyError):
    """A request for a file the route does not serve (unknown id, outside the folders)."""


def user_files_served() -> bool:
    """Whether the page may play files of the user's folders: only while the server listens on
    loopback alone (the flag `serve` sets for typed folder paths too)."""
    return bool(session.SAVED_FOLDERS.browser_may_add)


def audition_url(clip_id: str) -> str:
    """The page-relative URL that plays a user-folder clip through the route."""
    return ROUTE.lstrip("/") + "?id=" + urllib.parse.quote(clip_id, safe="")


def user_clip_file(library, clip_id: str) -> Path:
    """The real file of an indexed user-folder clip of `library`, checked to lie inside the added
    folder it was found in (symlinks resolved); NotServed for anything else."""
    try:
        entry = library.get(clip_id)
    except FoleyError:
        raise NotServed("not a sound of your folders") from None
    if entry.category != USER_CATEGORY:
        raise NotServed("not a sound of your folders")
    try:
        real = Path(entry.path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotServed("the file is gone") from None
    folders = [Path(f).resolve() for f in library.folders]
    if not any(real.is_relative_to(folder) for folder in folders) or not real.is_file():
        raise NotServed("the file is not inside one of your folders")
    return real


def playable_file(real: Path) -> Path:
    """`real` itself when the browser decodes its format, else its cached WAV preview."""
    if real.suffix.lower() in BROWSER_AUDIO:
        return real
    import soundfile as sf

    from foley_core.audio_io import read_audio

    st = real.stat()
    key = hashlib.sha256(f"{real}\0{st.st_mtime_ns}\0{st.st_size}".encode("utf-8")).hexdigest()[:32]
    out = _previews() / f"{key}.wav"
    if not out.is_file():
        try:
            audio, sr = read_audio(real, mono=False)
        except MediaError as err:
            raise NotServed(str(err)) from None
        with atomic_path(out) as tmp:
            sf.write(str(tmp), audio, sr, subtype="PCM_16", format="WAV")
    return out


def _previews() -> Path:
    global _preview_dir
    with _preview_lock:
        if _preview_dir is None:
            _preview_dir = Path(tempfile.mkdtemp(prefix="foley-previews-"))
            atexit.register(shutil.rmtree, _preview_dir, True)
        return _preview_dir


def _is_local_client(host: str | None) -> bool:
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return host == "localhost"


async def endpoint(request):
    """`GET /foley/audition?id=CLIP_ID`: the clip's audio (Range requests served), 403 when the
    studio is open beyond this machine, 404 for anything that is not an indexed user sound."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, PlainTextResponse

    if not user_files_served() or not _is_local_client(request.client and request.client.host):
        return PlainTextResponse(NOT_SERVED_REASON, status_code=403)

    def find() -> Path:
        return playable_file(user_clip_file(session.sound_library(), request.query_params.get("id", "")))

    try:
        path = await run_in_threadpool(find)
    except NotServed:
        return PlainTextResponse("Not one of your sounds.", status_code=404)
    # the page only ever plays these: no sniffing into something else, no caching by proxies
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


def routes() -> list:
    """The starlette routes to add to the studio's app (`launch_kwargs`)."""
    from starlette.routing import Route

    return [Route(ROUTE, endpoint, methods=["GET", "HEAD"])]
