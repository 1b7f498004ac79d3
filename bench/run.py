"""One command for every benchmark: ``make bench`` (or ``python bench/run.py [--quick]``).

Sections run in order and each prints its own table; pick some with their names::

    python bench/run.py                 # every section, the issues' sizes
    python bench/run.py --quick rest    # the REST benchmark only, small sizes

Sections: ``rest`` (bench/rest_bench.py: download-results against the old sequential way
and against the parallel floor, plus the memory run); ``feedback`` (bench/feedback_bench.py:
user_feedback's one request against one per participant and a bare request); ``media``
(bench/media_bench.py: SFTP mirror and upload against rsync -a, OpenSSH sftp and the old rsync
invocation); ``huge`` (bench/huge_answer_bench.py: peak memory of download-results against
one huge answer, with and without ``[limits] max_response_mb``); ``backup``
(bench/backup_bench.py: full and nightly ``longterm backup`` against the original's nightly
full re-download, store growth over nights, compression choices); ``video``
(bench/video_bench.py: compress_videos' per-scene search against the original's CRF x
resolution grid on three synthetic 1080p clips, targets 40/60/80); ``analysis``
(bench/analysis_bench.py: results-table on a large results file against loading it whole,
sensor figures per second with one drawing thread and with two processes); ``report``
(bench/report_bench.py: ``longterm report`` over 100 participants x 90 days, first build,
figures per second with one and two workers, nightly rebuild, site size, peak RSS).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rest(quick: bool) -> int:
    import rest_bench

    return rest_bench.main(["--quick"] if quick else [])


def _media(quick: bool) -> int:
    import media_bench

    # loopback, then a 40 ms round trip through bench/delay_proxy.py (issue 11)
    return media_bench.main([*(["--quick"] if quick else []), "--rtt-ms", "0,40"])


def _feedback(quick: bool) -> int:
    import feedback_bench

    return feedback_bench.main(["--quick"] if quick else [])


def _huge(quick: bool) -> int:
    import huge_answer_bench

    return huge_answer_bench.main(["--quick"] if quick else [])


def _video(quick: bool) -> int:
    import video_bench

    return video_bench.main(["--quick"] if quick else [])


def _backup(quick: bool) -> int:
    import backup_bench

    return backup_bench.main(["--quick"] if quick else [])


def _analysis(quick: bool) -> int:
    import analysis_bench

    return analysis_bench.main(["--quick"] if quick else [])


def _report(quick: bool) -> int:
    import report_bench

    return report_bench.main(["--quick"] if quick else [])


SECTIONS: dict[str, Callable[[bool], int]] = {
    "rest": _rest,
    "feedback": _feedback,
    "media": _media,
    "huge": _huge,
    "backup": _backup,
    "video": _video,
    "analysis": _analysis,
    "report": _report,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the longterm_sync benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    parser.add_argument("sections", nargs="*", help=f"{', '.join(SECTIONS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    status = 0
    for name in args.sections or list(SECTIONS):
        print(f"== {name} ==", flush=True)
        status = max(status, SECTIONS[name](args.quick))
    return status


if __name__ == "__main__":
    sys.exit(main())
