"""A userspace TCP proxy that adds a round trip time: every chunk waits rtt/2 each way.

This kernel has no netem, so a link "across a city or a country" (20-100 ms) is emulated
here: each chunk read from one side is written to the other ``rtt / 2`` seconds later, in
order, with no throughput cap beyond what the delay itself implies (a sender limited to a
window W moves at most W per round trip, exactly as on a real long link). Nothing else of a
real link (loss, bandwidth limit, jitter) is imitated.

It runs in its own process (``python bench/delay_proxy.py --rtt-ms 40 --target HOST:PORT``
prints the port it listens on, then serves until killed) so that its event loop does not
share a core's time slices with the client being measured; :class:`DelayProxyProcess`
starts and stops one from the benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
from collections import deque
from pathlib import Path

CHUNK = 1 << 18


class _Pipe:
    """One direction: chunks become writable ``delay`` seconds after they were read."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.queue: deque[tuple[float, bytes]] = deque()
        self.ready = asyncio.Event()
        self.eof = False

    async def pump_in(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await self.reader.read(CHUNK):
                self.queue.append((loop.time() + self.delay, data))
                self.ready.set()
        except OSError:
            pass
        finally:
            self.eof = True
            self.ready.set()

    async def pump_out(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self.queue:
                    if self.eof:
                        break
                    self.ready.clear()
                    await self.ready.wait()
                    continue
                due, _ = self.queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                # everything already due goes out in one write
                now = loop.time()
                parts: list[bytes] = []
                while self.queue and self.queue[0][0] <= now:
                    parts.append(self.queue.popleft()[1])
                self.writer.write(b"".join(parts))
                await self.writer.drain()
            if self.writer.can_write_eof():
                self.writer.write_eof()
        except OSError:
            pass


async def _handle(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    host: str,
    port: int,
    delay: float,
) -> None:
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    up = _Pipe(client_r, server_w, delay)
    down = _Pipe(server_r, client_w, delay)
    try:
        await asyncio.gather(up.pump_in(), up.pump_out(), down.pump_in(), down.pump_out())
    finally:
        for w in (client_w, server_w):
            w.close()
            with contextlib.suppress(OSError):
                await w.wait_closed()


async def serve(host: str, port: int, target_host: str, target_port: int, rtt_ms: float) -> None:
    delay = rtt_ms / 2000

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _handle(r, w, target_host, target_port, delay)

    server = await asyncio.start_server(handle, host, port, limit=CHUNK * 4)
    sock_port = server.sockets[0].getsockname()[1]
    print(sock_port, flush=True)
    async with server:
        await server.serve_forever()


class DelayProxyProcess:
    """``with DelayProxyProcess(host, port, rtt_ms) as proxy:`` connect to ``proxy.port``."""

    def __init__(self, target_host: str, target_port: int, rtt_ms: float) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.rtt_ms = rtt_ms
        self.host = "127.0.0.1"
        self.port = 0
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayProxyProcess:
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--rtt-ms", str(self.rtt_ms),
             "--target", f"{self.target_host}:{self.target_port}"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._proc = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtt-ms", type=float, required=True, help="round trip added")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (0: any free port)")
    args = parser.parse_args(argv)
    thost, _, tport = args.target.rpartition(":")
    lhost, _, lport = args.listen.rpartition(":")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is installed on Linux
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(lhost, int(lport), thost, int(tport), args.rtt_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
