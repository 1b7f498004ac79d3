"""Media benchmark: our SFTP engine side by side with rsync and OpenSSH's sftp.

Everything runs against a real OpenSSH sshd on loopback (started here with the test
fixture's launcher, cipher aes128-gcm@openssh.com, compression off for every client), as
issue 4 asks: initial download of 8 x 256 MiB and of 2000 x 256 KiB (our md5 verification
included), a re-run with nothing changed, an upload of the same set and a re-upload with
nothing changed. Baselines: ``rsync -a -e ssh``, ``sftp -B 261120 -R 128`` and the old
scripts' ``rsync --delete -vre ssh`` (no ``-t``: it rewrites every file on each run).

    .venv/bin/python bench/media_bench.py            # full sizes (about 2.5 GiB, ~5 min)
    .venv/bin/python bench/media_bench.py --quick    # 4 x 64 MiB and 400 x 256 KiB
    .venv/bin/python bench/media_bench.py --rtt-ms 0,40   # loopback, then a 40 ms link

``--rtt-ms N`` (issue 11) puts bench/delay_proxy.py between every tool and sshd: each chunk
waits N/2 ms each way, as on a link across a city or a country. There, by default, only the
tools of issue 11's table run (ours, ``rsync -a``, ``sftp``), and OpenSSH ``sftp`` only for
the big files: it pays several round trips per small file (151 s for 400 x 256 KiB at 40 ms),
which would make the run last most of an hour.

Every timed step starts with ``sync``: otherwise a step pays for writing back the data set
just generated, or the files the previous tool left dirty in the page cache (``rsync -a``
and ``sftp`` never wait for the disk; ours and ``rsync --fsync`` do). The disk's own
durable write rate is measured first and printed: it bounds every tool that fsyncs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the sshd launcher lives with the test fixtures

from delay_proxy import DelayProxyProcess  # noqa: E402
from fixtures_sshd import SshdInfo, start_sshd  # noqa: E402
from longterm_sync.cli.common import run_async  # noqa: E402
from longterm_sync.config import Limits, ServerProfile  # noqa: E402
from longterm_sync.media import mirror_down, push_up  # noqa: E402

MB = 1 << 20
CIPHER = "aes128-gcm@openssh.com"


@dataclasses.dataclass(frozen=True)
class DataSet:
    name: str
    count: int
    size: int


FULL = (DataSet("big", 8, 256 * MB), DataSet("small", 2000, 256 * 1024))
QUICK = (DataSet("big", 4, 64 * MB), DataSet("small", 400, 256 * 1024))


@dataclasses.dataclass
class Row:
    scenario: str
    seconds: dict[str, float]

    def ratio(self, a: str, b: str) -> float | None:
        if a in self.seconds and b in self.seconds and self.seconds[b] > 0:
            return self.seconds[a] / self.seconds[b]
        return None


def _make_files(folder: Path, ds: DataSet) -> None:
    """Distinct, incompressible files with their sidecars, as the platform keeps them."""
    folder.mkdir(parents=True, exist_ok=True)
    seed = os.urandom(MB + 4096)
    for i in range(ds.count):
        digest = hashlib.md5()
        path = folder / f"{ds.name}_{i:04d}.mp4"
        with open(path, "wb") as fh:
            left, j = ds.size, 0
            while left:
                n = min(left, MB)
                start = (i * 7919 + j * 131) % 4096
                chunk = seed[start : start + n]
                if j == 0:
                    chunk = os.urandom(min(n, 4096)) + chunk[4096:]
                fh.write(chunk)
                digest.update(chunk)
                left -= n
                j += 1
        (folder / f"{path.name}.md5sum").write_text(digest.hexdigest() + "\n")


def _ssh_command(info: SshdInfo) -> list[str]:
    return [
        "ssh",
        "-F", "/dev/null",
        "-p", str(info.port),
        "-i", str(info.key),
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={info.known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "Compression=no",
        "-c", CIPHER,
    ]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process and the children it waited for
    rss_mb: float  # peak resident memory of this process and its descendants together
    base_mb: float  # this process's own before the step (the bench's data, not the tool's)


_SAMPLER = """\
import os, select, sys
from pathlib import Path

def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0

def tree_kib(root, me):
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid != me:
            total += rss_kib(pid)
            todo.extend(children.get(pid, ()))
    return total

root, me, peak = int(sys.argv[1]), os.getpid(), 0
print(rss_kib(root), flush=True)
while not select.select([sys.stdin], [], [], 0.05)[0]:
    peak = max(peak, tree_kib(root, me))
print(peak, flush=True)
"""


class _PeakSampler:
    """The client's peak memory while a step runs: this process and every process under it
    (our helper processes, rsync and its ssh, sftp and its ssh; not sshd, not the delay
    proxy), sampled every 50 ms from a process of its own: a thread here would share the
    GIL with the event loop being measured."""

    def __enter__(self) -> _PeakSampler:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SAMPLER, str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        self.base = int(self._proc.stdout.readline())
        self.peak = self.base
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self.peak = max(self.peak, int(self._proc.stdout.readline() or 0))
        self._proc.wait()


def _timed(fn: Callable[..., object], *args: object) -> Timing:
    """Wall seconds, the client's CPU seconds (this process and the children it waited
    for: our helper process, rsync and ssh, sftp; not sshd, not the delay proxy) and its
    peak memory."""
    os.sync()  # no step pays for an earlier one's dirty pages
    with _PeakSampler() as sampler:
        before = os.times()
        start = time.perf_counter()
        fn(*args)
        wall = time.perf_counter() - start
        after = os.times()
    cpu = sum(b - a for a, b in zip(before[:4], after[:4], strict=True))
    return Timing(wall, cpu, sampler.peak / 1024, sampler.base / 1024)


def disk_rate(folder: Path, size: int = 1024 * MB) -> float:
    """Bytes per second written and fsynced to ``folder``'s disk (the floor for any tool
    that makes its files durable, as ours does)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "disk-rate.tmp"
    # Shifted slices of one seed: no two 4 KiB blocks alike (this VM's disk stores a
    # repeated block several times faster than real data, which would flatter the floor).
    seed = os.urandom(MB + 4096)
    os.sync()
    start = time.perf_counter()
    with open(path, "wb") as fh:
        for j in range(size // MB):
            fh.write(seed[(j * 131) % 4096 :][:MB])
        fh.flush()
        os.fsync(fh.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return size / seconds


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(cmd: list[str], stdin: str | None = None) -> None:
    subprocess.run(cmd, check=True, input=stdin, text=True, stdout=subprocess.DEVNULL)


class Bench:
    def __init__(
        self, info: SshdInfo, work: Path, limits: Limits, *, small_sftp: bool = True
    ) -> None:
        self.info = info
        self.small_sftp = small_sftp
        self.work = work
        self.limits = limits
        self.ssh = " ".join(_ssh_command(info))
        self.remote = f"{info.user}@{info.host}"

    def profile(self, media_dir: Path) -> ServerProfile:
        return ServerProfile(
            name="bench",
            url="http://127.0.0.1:9",
            ssh_user=self.info.user,
            ssh_host=self.info.host,
            ssh_port=self.info.port,
            key=self.info.key,
            known_hosts=self.info.known_hosts,
            media_dir=str(media_dir),
        )

    # ours
    def ours_down(self, src: Path, dest: Path) -> None:
        summary = run_async(mirror_down(self.profile(src), self.limits, dest))
        if summary.failures:
            raise RuntimeError(summary.lines())

    def ours_up(self, src: Path, dest: Path) -> None:
        summary = run_async(push_up(self.profile(dest), self.limits, src, verify="md5"))
        if summary.failures:
            raise RuntimeError(summary.lines())

    # baselines
    def rsync_a(self, src: str, dest: str) -> None:
        _run(["rsync", "-a", "-e", self.ssh, src, dest])

    def rsync_fsync(self, src: str, dest: str) -> None:
        _run(["rsync", "-a", "--fsync", "-e", self.ssh, src, dest])

    def rsync_old(self, src: str, dest: str) -> None:
        _run(["rsync", "--delete", "-vre", self.ssh, src, dest])

    def sftp(self, batch: str) -> None:
        ssh = _ssh_command(self.info)
        opts = [a for a in ssh[1:] if a not in ("-p", str(self.info.port))]
        _run(["sftp", "-B", "261120", "-R", "128", "-P", str(self.info.port),
              "-b", "-", *opts, self.remote], stdin=batch)  # fmt: skip

    def steps(
        self, tool: str, served: Path, local: Path, up: Path
    ) -> list[tuple[str, Callable[..., None], tuple[object, ...]]]:
        """The scenarios one tool runs, in order (each later one relies on the earlier)."""
        if tool == "ours":
            return [
                ("download", self.ours_down, (served, local)),
                ("download, no change", self.ours_down, (served, local)),
                ("upload", self.ours_up, (local, up)),
                ("upload, no change", self.ours_up, (local, up)),
            ]
        if tool == "sftp":  # no skip-unchanged mode: initial transfers only
            if not self.small_sftp and "small" in served.name:
                return []
            return [
                ("download", self.sftp, (f"get -r {served} {local}\n",)),
                ("upload", self.sftp, (f"put -r {local} {up}\n",)),
            ]
        rsync = {
            "rsync -a": self.rsync_a,
            "rsync fsync": self.rsync_fsync,
            "old rsync": self.rsync_old,
        }[tool]
        here, there = f"{local}/", f"{self.remote}:{up}/"
        served_r = f"{self.remote}:{served}/"
        return [
            ("download", rsync, (served_r, here)),
            ("download, no change", rsync, (served_r, here)),
            ("upload", rsync, (here, there)),
            ("upload, no change", rsync, (here, there)),
        ]

    def dataset(self, ds: DataSet, tools: list[str], repeat: int = 1) -> list[Row]:
        """Every tool's steps, ``repeat`` rounds interleaved; the best time of each counts
        (other processes on a shared machine only ever make a run slower)."""
        served = self.work / "server" / ds.name
        _make_files(served, ds)
        settle()
        rows: dict[str, Row] = {}

        def record(scenario: str, tool: str, timing: Timing) -> None:
            seconds = timing.wall
            row = rows.setdefault(scenario, Row(f"{ds.name} {scenario}", {}))
            row.seconds[tool] = min(seconds, row.seconds.get(tool, seconds))
            print(f"  {ds.name:5} {scenario:22} {tool:11} {seconds:7.2f} s   client cpu "
                  f"{timing.cpu:6.2f} s   peak rss {timing.rss_mb:5.0f} MB (bench "
                  f"{timing.base_mb:3.0f})   load {_load()}", flush=True)  # fmt: skip

        for _ in range(repeat):
            for tool in tools:
                local = self.work / f"local-{tool}"
                up = self.info.media_root.parent / f"up-{tool}-{ds.name}"
                for path in (local, up):
                    self.discard(path)
                for scenario, fn, args in self.steps(tool, served, local, up):
                    record(scenario, tool, _timed(fn, *args))
                for path in (local, up):
                    self.discard(path)
        self.discard(served)
        return list(rows.values())

    def discard(self, path: Path) -> None:
        """Put a tree out of the way, deleted only when the run ends (:func:`settle`).

        Deleting thousands of files just before a step slows the step down on ext4 without
        a journal (this VM's disk): for a minute after a deletion (five while the inode
        table is dirty) the kernel skips every recently freed inode when it allocates one,
        each skip a buffer lookup (perf: ``recently_deleted`` and ``find_get_block_common``,
        a third of the CPU). Measured: the same 2000-file download took 5.4 s with no
        deletion before it and 9-12 s a few seconds after 10,000 files were deleted, for
        whichever tool came next."""
        if path.exists():
            trash = self.work / "trash"
            trash.mkdir(exist_ok=True)
            path.rename(trash / f"{len(list(trash.iterdir()))}-{path.name}")


def render(rows: list[Row]) -> list[str]:
    tools = ["ours", "rsync -a", "sftp", "old rsync", "rsync fsync"]
    head = f"{'scenario':28}" + "".join(f"{t:>12}" for t in tools)
    head += f"{'rsync/ours':>12}{'ours/sftp':>11}{'old/ours':>10}{'fsync/ours':>12}"
    out = [head, "-" * len(head)]
    for row in rows:
        line = f"{row.scenario:28}"
        for t in tools:
            v = row.seconds.get(t)
            line += f"{v:>11.2f}s" if v is not None else f"{'-':>12}"
        for a, b, w in (
            ("rsync -a", "ours", 12),
            ("ours", "sftp", 11),
            ("old rsync", "ours", 10),
            ("rsync fsync", "ours", 12),
        ):
            ratio = row.ratio(a, b)
            line += f"{ratio:>{w - 1}.2f}x" if ratio is not None else f"{'-':>{w}}"
        out.append(line)
    return out


def targets(rows: list[Row], rtt_ms: float = 0) -> list[str]:
    """The issue's targets (4 on loopback, 11 over a delayed link), each with the measured
    figure and whether it was met."""
    by = {row.scenario: row for row in rows}
    out: list[str] = []

    def check(label: str, value: float | None, ok: Callable[[float], bool], unit: str) -> None:
        if value is None:
            return
        out.append(f"  {'met   ' if ok(value) else 'MISSED'} {label}: {value:.2f}{unit}")

    if rtt_ms:
        if big := by.get("big download"):
            for base in ("rsync -a", "sftp"):
                check(f"big download >= 3x faster than {base}", big.ratio(base, "ours"),
                      lambda v: v >= 3, "x")  # fmt: skip
        if small := by.get("small download"):
            check("small download >= 1.5x faster than rsync -a",
                  small.ratio("rsync -a", "ours"), lambda v: v >= 1.5, "x")  # fmt: skip
        if small_up := by.get("small upload"):
            check("small upload >= 1.2x faster than rsync -a",
                  small_up.ratio("rsync -a", "ours"), lambda v: v >= 1.2, "x")  # fmt: skip
        if same := by.get("small download, no change"):
            check("no-change re-run no slower than rsync -a", same.ratio("rsync -a", "ours"),
                  lambda v: v >= 1.0, "x")  # fmt: skip
        return out
    if big := by.get("big download"):
        check("big download >= 1.3x faster than rsync -a", big.ratio("rsync -a", "ours"),
              lambda v: v >= 1.3, "x")  # fmt: skip
        check("big download within 1.25x of sftp", big.ratio("ours", "sftp"),
              lambda v: v <= 1.25, "x")  # fmt: skip
    if small := by.get("small download"):
        check("small download within 1.5x of rsync -a", small.ratio("ours", "rsync -a"),
              lambda v: v <= 1.5, "x")  # fmt: skip
    if same := by.get("small download, no change"):
        check("no-change re-run <= 1 s", same.seconds.get("ours"), lambda v: v <= 1.0, " s")
        check("no-change re-run >= 4x faster than old rsync", same.ratio("old rsync", "ours"),
              lambda v: v >= 4, "x")  # fmt: skip
    for name in ("big upload, no change", "small upload, no change"):
        if row := by.get(name):
            check(f"{name} <= 2 s", row.seconds.get("ours"), lambda v: v <= 2.0, " s")
    return out


def _through(info: SshdInfo, proxy: DelayProxyProcess, work: Path) -> SshdInfo:
    """``info`` as reached through ``proxy``: its port, and a known_hosts naming that port
    (OpenSSH and asyncssh look host keys up by ``[host]:port``)."""
    known = work / f"known_hosts-{proxy.port}"
    text = info.known_hosts.read_text()
    known.write_text(text.replace(f"]:{info.port} ", f"]:{proxy.port} "))
    return dataclasses.replace(info, port=proxy.port, known_hosts=known)


WAN_TOOLS = ["ours", "rsync -a", "sftp"]
ALL_TOOLS = ["ours", "rsync -a", "sftp", "old rsync", "rsync fsync"]


def run_media_bench(
    *, quick: bool = False, tools: list[str] | None = None, limits: Limits | None = None,
    workdir: Path | None = None, repeat: int = 1, rtt_ms: float = 0,
    small_sftp: bool | None = None, sets: tuple[str, ...] = ("big", "small"),
) -> list[Row]:  # fmt: skip
    """Start sshd (behind a delay proxy when ``rtt_ms``), run every data set and tool, stop
    sshd; return the rows."""
    tools = tools or (WAN_TOOLS if rtt_ms else ALL_TOOLS)
    limits = limits or Limits()
    try:
        return _run_media_bench(quick, tools, limits, workdir, repeat, rtt_ms, small_sftp, sets)
    finally:
        # the whole tree (trash included) is gone now: the next run's steps wait (settle)
        DELETED_MARK.write_text(str(time.time()))


DELETED_MARK = Path(tempfile.gettempdir()) / "media-bench-deleted-at"
"""When a bench run last deleted its files (wall clock), for the next one's settle()."""
SETTLE_SECONDS = 65.0
"""ext4 without a journal skips inodes freed in the last 60 s (after a sync) when it
allocates one: see Bench.discard."""


def settle() -> None:
    """Wait until the files an earlier run deleted no longer slow the allocation of new ones
    (Bench.discard): everything synced, then a minute after that deletion."""
    os.sync()
    try:
        since = time.time() - float(DELETED_MARK.read_text())
    except (OSError, ValueError):
        return
    if 0 <= since < SETTLE_SECONDS:
        wait = SETTLE_SECONDS - since
        print(f"  (waiting {wait:.0f} s: files deleted {since:.0f} s ago still slow down "
              "ext4's inode allocation without a journal)", flush=True)  # fmt: skip
        time.sleep(wait)


def _run_media_bench(
    quick: bool, tools: list[str], limits: Limits, workdir: Path | None, repeat: int,
    rtt_ms: float, small_sftp: bool | None, sets: tuple[str, ...],
) -> list[Row]:  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="media-bench-", dir=workdir) as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        info = start_sshd(work / "sshd", extra_config=f"Ciphers {CIPHER}\nCompression no\n")
        stack.callback(info.stop)
        reach = info
        if rtt_ms:
            proxy = stack.enter_context(DelayProxyProcess(info.host, info.port, rtt_ms))
            reach = _through(info, proxy, work)
        rate = disk_rate(work)
        print(f"disk: {rate / MB:.0f} MiB/s written and fsynced (2 GiB durable in at "
              f"least {2048 * MB / rate:.1f} s); load {_load()}", flush=True)  # fmt: skip
        if small_sftp is None:
            small_sftp = not rtt_ms
        bench = Bench(reach, work, limits, small_sftp=small_sftp)
        rows: list[Row] = []
        for ds in QUICK if quick else FULL:
            if ds.name not in sets:
                continue
            print(f"{ds.count} x {ds.size // 1024} KiB, {rtt_ms:g} ms round trip:", flush=True)
            rows.extend(bench.dataset(ds, tools, repeat))
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data sets")
    parser.add_argument("--tools", default=None,
                        help="comma-separated: ours, rsync -a, sftp, old rsync, rsync fsync "
                        "(rsync -a --fsync: durable like ours); default all on loopback, "
                        "ours, rsync -a, sftp over a delayed link")  # fmt: skip
    parser.add_argument("--rtt-ms", default="0",
                        help="comma-separated round trips to emulate, e.g. 0,40,100 "
                        "(0: loopback, no proxy)")  # fmt: skip
    parser.add_argument(
        "--small-sftp",
        action="store_true",
        help="run OpenSSH sftp on the small files over a delayed link too",
    )
    parser.add_argument("--sets", default="big,small", help="data sets: big, small or both")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the best time counts")
    parser.add_argument("--workdir", type=Path, default=None, help="where the data goes")
    defaults = Limits()
    parser.add_argument("--transfers", type=int, default=defaults.sftp_transfers)
    parser.add_argument("--connections", type=int, default=defaults.sftp_connections)
    parser.add_argument("--max-requests", type=int, default=defaults.sftp_max_requests)
    parser.add_argument("--block-size", type=int, default=defaults.sftp_block_size)
    parser.add_argument("--processes", type=int, default=defaults.sftp_processes)
    parser.add_argument("--window", type=int, default=defaults.ssh_window,
                        help="SSH channel window in bytes ([limits] ssh_window)")  # fmt: skip
    parser.add_argument("--packet", type=int, default=defaults.ssh_packet_size,
                        help="SSH packet size in bytes ([limits] ssh_packet_size)")  # fmt: skip
    args = parser.parse_args(argv)
    limits = dataclasses.replace(
        defaults,
        sftp_transfers=args.transfers,
        sftp_connections=args.connections,
        sftp_max_requests=args.max_requests,
        sftp_block_size=args.block_size,
        sftp_processes=args.processes,
        ssh_window=args.window,
        ssh_packet_size=args.packet,
    ).validate()
    print(f"settings: {limits.sftp_processes} process(es) x {limits.sftp_connections} "
          f"connection(s), {limits.sftp_transfers} files "
          f"in flight, max_requests {limits.sftp_max_requests}, block "
          f"{limits.sftp_block_size or 'server max'}, SSH window "
          f"{limits.ssh_window // MB} MiB, packet {limits.ssh_packet_size // 1024} KiB; "
          f"cipher {CIPHER}, no compression")  # fmt: skip
    tools = [t.strip() for t in args.tools.split(",")] if args.tools else None
    for rtt in [float(x) for x in args.rtt_ms.split(",")]:
        print(f"\n=== round trip {rtt:g} ms{' (loopback)' if not rtt else ''} ===", flush=True)
        rows = run_media_bench(
            quick=args.quick, tools=tools, limits=limits, workdir=args.workdir,
            repeat=args.repeat, rtt_ms=rtt, small_sftp=True if args.small_sftp else None,
            sets=tuple(x.strip() for x in args.sets.split(",")),
        )  # fmt: skip
        print()
        for line in render(rows):
            print(line)
        print(f"\ntargets (issue {11 if rtt else 4}, {rtt:g} ms):")
        for line in targets(rows, rtt):
            print(line)
        print(f"load average at the end: {_load()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
