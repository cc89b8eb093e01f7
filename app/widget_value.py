"""Reading the JSON value a page widget (curve editor, onsets lane, timeline) sends back."""

from __future__ import annotations

import json

from foley_core.errors import FoleyError


def read_json_value(value: str | dict, error: type[FoleyError], what: str, retry: str) -> dict:
    """The widget's value as a dict (a copy when given one); `error` says "<what> could not be
    read (...); <retry>" for text that is not JSON or a value that is not an object."""
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as err:
            raise error(f"{what} could not be read ({err.msg}); {retry}") from None
    else:
        data = value
    if not isinstance(data, dict):
        raise error(f"{what} could not be read; {retry}")
    return dict(data)
