"""N board viewers on the live board's stream, in their own process (bench/board_live.py starts it):
asyncio and raw sockets, no HTTP library, so thousands of viewers cost the machine little.

    python bench/sse_viewers.py HOST PORT PATH COOKIE N SECONDS OUT.json

Each viewer sends GET PATH with the cookie, reads the event stream, and notes when each version
(`id: V`) arrived (time.time()). Prints "connected N" once all are connected (the bench waits for
that line), then after SECONDS writes {"connected": n, "failed": n, "arrivals": {V: [t, …]}} to OUT.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict


async def viewer(host, port, path, cookie, arrivals, connected: list, failed: list, stop: asyncio.Event):
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
                      f"User-Agent: salesdesk-bench\r\nCookie: {cookie}\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            failed.append(status.decode(errors="replace").strip())
            writer.close()
            return
        connected.append(1)
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"id: "):
                arrivals[int(line[4:])].append(time.time())
        writer.close()
    except (OSError, asyncio.IncompleteReadError) as exc:
        failed.append(repr(exc))


async def main(host, port, path, cookie, n, seconds, out):
    arrivals: dict[int, list[float]] = defaultdict(list)
    connected, failed, stop = [], [], asyncio.Event()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(viewer(host, port, path, cookie, arrivals, connected, failed, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.2)  # connect in waves, as people open a page
    for _ in range(600):
        if len(connected) + len(failed) >= n:
            break
        await asyncio.sleep(0.1)
    print(f"connected {len(connected)} failed {len(failed)}", flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    with open(out, "w") as f:
        json.dump({"connected": len(connected), "failed": len(failed), "failures": failed[:5],
                   "arrivals": {str(k): v for k, v in arrivals.items()}}, f)


if __name__ == "__main__":
    host, port, path, cookie, n, seconds, out = sys.argv[1:8]
    asyncio.run(main(host, int(port), path, cookie, int(n), float(seconds), out))
