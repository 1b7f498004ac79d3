#!/usr/bin/env python3
"""Drop-in for the original `download-plot-gyro-sequence.py`: same flags, run by longterm_sync."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from longterm_sync.cli import script_main

if __name__ == "__main__":  # figure workers re-import this script (multiprocessing)
    script_main("download-plot-gyro-sequence")
