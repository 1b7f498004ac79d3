"""The sandbox platform: a local server that speaks the platform's REST and SSH protocols.

``server.Sandbox`` runs both in-process (``async with Sandbox(SandboxOptions(...)) as info``);
``longterm sandbox`` runs it as a program. ``store`` holds the platform's rules, ``rest`` its
HTTP face, ``ssh`` the media account, ``synth`` and ``fill`` a synthetic study uploaded
through the public API. Names are imported lazily so that using one part (the SSH server in
a test, say) does not import the others.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ReadyInfo", "Sandbox", "SandboxOptions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(name)
