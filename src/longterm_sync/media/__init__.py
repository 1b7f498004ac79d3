"""The media engine: verified, parallel SFTP transfers of the platform's videos.

Layers, bottom up: :mod:`.sftp` (connections, host keys, errors), :mod:`.remote` and
:mod:`.local` (the two trees), :mod:`.plan` (the decision ladder), :mod:`.meter` (files and
bytes as events), :mod:`.transfer` (verified single-file get/put), :mod:`.worker` (helper
processes sharing a download) and :mod:`.sync` (the jobs other modules call:
``mirror_down``, ``push_up``, ``list_remote_videos``).
"""

from __future__ import annotations

from .meter import Meter
from .sync import VERIFY_MODES, list_remote_videos, mirror_down, push_up

__all__ = [
    "VERIFY_MODES",
    "Meter",
    "list_remote_videos",
    "mirror_down",
    "push_up",
]
