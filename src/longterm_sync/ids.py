"""Participant ids: the original scripts' ``external_id`` hash, and the rule an id must meet
before it names a file.

``external_id`` is ``sha256(f"{name}{surname}{phone}{salt}")``, exactly as the original
``longterm_modules/external_id.py`` computes it (salt last, fields as given), so participants
created by the original ``upload-schedule.py`` are found. The original shipped the literal salt
``your-salt-here``; it is the default here too (:data:`ORIGINAL_SALT`), and ``longterm config``
says when it is the one in force. The name, surname and phone never leave the machine; only
the hash does.

Ids also arrive from outside (the server's listing, a spreadsheet) and end up in file names,
so every file name built from an id goes through :func:`id_file_name`, which refuses any id
that does not match :data:`SAFE_ID` (no ``/``, ``..``, newline or 300-character name can turn
into a path); :func:`shown_id` is how such a refused id is named in a message.
"""

from __future__ import annotations

import hashlib
import re

ORIGINAL_SALT = "your-salt-here"
"""The salt the original scripts shipped with (public, so it protects nothing)."""

SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What an id must be to name a file (the platform's ids are 64 hex digits)."""

SHOWN_MAX = 40


def external_id(name: str, surname: str, phone: str, salt: str = ORIGINAL_SALT) -> str:
    """The original scripts' hash; fields are taken as they are (no stripping)."""
    text = f"{name}{surname}{phone}{salt}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_safe_id(value: str) -> bool:
    return SAFE_ID.fullmatch(value) is not None


def shown_id(value: str) -> str:
    """An untrusted id as it may appear in one line of output: escaped and shortened."""
    text = value.encode("unicode_escape").decode("ascii")
    if len(text) > SHOWN_MAX:
        text = f"{text[:SHOWN_MAX]}...({len(value)} chars)"
    return text if is_safe_id(value) else f"'{text}'"


REFUSED_REASON = (
    "refused: an external_id must be 1-128 of A-Z a-z 0-9 _ - to name a file; nothing "
    "fetched or written for it"
)


class UnsafeIdError(ValueError):
    """An id that must not name a file; ``str()`` says which and why, escaped."""

    def __init__(self, value: str) -> None:
        super().__init__(f"participant {shown_id(value)}: {REFUSED_REASON}")
        self.value = value


def id_file_name(pattern: str, value: str) -> str:
    """``pattern.format(value)`` for a safe id; :class:`UnsafeIdError` otherwise."""
    if not is_safe_id(value):
        raise UnsafeIdError(value)
    return pattern.format(value)
