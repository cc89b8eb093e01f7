"""What every panel shares: the error rule (a FoleyError is a message, never a traceback or an
errored output), the session guard, and small views of the session several panels show."""

from __future__ import annotations

import functools
import logging
import time
from typing import Callable

import gradio as gr

from app import views
from app.session import CURVE_SCALE_RANGE, Session
from foley_core import constants
from foley_core.errors import FoleyError, GenerationCancelled

log = logging.getLogger(__name__)

NOTICE_S = 8      # how long a message stays: long enough to read, gone before the next one
MAX_RESTORE_DIRS = 5


def notify(level: str, message: str, *, title: str | None = None) -> None:
    """A toast (not an error state on the outputs). Tests replace it to see the messages."""
    kind = gr.Info if level == "info" else gr.Warning
    kind(message, duration=NOTICE_S, **({"title": title} if title else {}))


def user_errors(fn: Callable | None = None, *, shown: Callable | None = None) -> Callable:
    """Show FoleyErrors (and gr.Errors raised here) as messages and leave every output as it was
    (gr.skip()): raising gr.Error would mark every output as errored and wipe what they showed.
    A cancelled generation is not an error: it says so and keeps the last takes. `shown(*args)`
    may return updates that put the values actually in use back into the boxes a refused input
    came from. Anything else is a bug: logged with its traceback, shown as a short message."""
    if fn is None:
        return functools.partial(user_errors, shown=shown)

    def refused(message: str, args, kwargs, *, level: str = "warning", title=None):
        notify(level, message, title=title)
        if shown is not None:
            try:
                updates = shown(*args, **kwargs)
            except (FoleyError, gr.Error):
                updates = None
            if updates:
                return updates
        return gr.skip()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except GenerationCancelled:
            return refused("Generation cancelled: the previous takes are kept.", args, kwargs,
                           level="info", title="Cancelled")
        except gr.Error as err:
            return refused(str(err.message), args, kwargs)
        except FoleyError as err:
            return refused(str(err), args, kwargs)
        except Exception as err:  # noqa: BLE001 - a bug: keep the traceback in the log only
            log.exception("unexpected error in %s", fn.__name__)
            return refused(f"Something went wrong ({type(err).__name__}: {err}). The details are "
                           "in the server log; please report it.", args, kwargs)
        finally:
            log.debug("%s took %.2f s", fn.__name__, time.perf_counter() - t0)

    return wrapper


def need(sess: Session | None) -> Session:
    if sess is None:
        raise gr.Error("This page lost its session (the server restarted?): reload the page.")
    log.debug("session %s", sess.id)
    return sess


def selection_text(sess: Session) -> str:
    start, end = sess.selection
    limit = constants.MAX_GENERATION_SECONDS
    return (f"Selection {start:.2f}–{end:.2f} s ({end - start:.2f} s): the new sound is made "
            f"for this range (at most {limit:.0f} s at a time).")


def timeline(c, sess: Session, selected_id: str | None = None) -> str:
    """The timeline widget's value for the session's project, video and selection."""
    # imported here: the timeline panel itself uses this module's helpers
    from app.panels import timeline as timeline_panel

    return timeline_panel.value(c, sess, selected_id)


def shown_curve_scale(value: float | None) -> float:
    """A curve guidance value as the slider can show it (within its range; 1 for none)."""
    lo, hi = CURVE_SCALE_RANGE
    return 1.0 if value is None else float(min(hi, max(lo, float(value))))
