#!/usr/bin/env python3
"""Replacement for the original `compress_videos.py`: same folders, a search per scene."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from longterm_sync.cli import script_main

script_main("compress_videos")
