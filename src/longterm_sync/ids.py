"""The participant's ``external_id``: a salted sha256 of name, surname and phone.

The name, surname and phone never leave the machine; only this hash does. The salt comes
from the server profile (``salt``/``salt_env``); an empty salt reproduces the unsalted
hashes of the original scripts.
"""

from __future__ import annotations

import hashlib


def external_id(name: str, surname: str, phone: str, salt: str = "") -> str:
    text = f"{salt}{name.strip()}{surname.strip()}{phone.strip()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
