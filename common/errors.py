"""The one exception type for refused user input, carrying the HTTP status the APIs answer with."""
from __future__ import annotations


class InputError(ValueError):
    """User input (an image, a URL, a parameter) that the studio refuses.

    ``str(err)`` is the user-facing message: it starts with the field or file name, says what was
    wrong and what is allowed, and never contains a local path or a traceback. ``status`` is the HTTP
    status the JSON API answers with: 400 bad or undecodable image, 403 refused address, 413 too large,
    415 not an image, 422 invalid parameter, 502 upstream failure, 504 upstream timeout.
    Subclassing ``ValueError`` keeps every caller that already maps ``ValueError`` to a 4xx correct.
    """

    def __init__(self, field: str | None, message: str, status: int = 400):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.status = status
