#!/usr/bin/env python3
"""Viewer churn against a running node, and its resident memory before, during and after.

    churn.py --url http://127.0.0.1:PORT/whep --pid NODE_PID [--sessions 1000] [--settle 60]

One steady counting viewer stays connected throughout (aiortc, decoder replaced by a frame
counter, as in bench/viewer.py count). After it has played for --warmup seconds the node's RSS
is the one-viewer baseline. Then --sessions sessions come and go, --batch at a time:

- two in three are whole viewers: offer, POST, first frame, DELETE, close;
- one in three is aborted: alternately a POST cut off in the middle of its body (the connection
  closed), and an offer POSTed whose answer is never used (no ICE: the node drops it at
  webrtc.connect_timeout_ms).

Then the node's RSS is sampled every second for --settle seconds. Prints one JSON object:
baseline, peak, after-churn and final RSS (KiB), the first second at which RSS was back within
--bound-kib of the baseline (null if never), the steady viewer's frame rate during the settle
window, and the sessions that failed. Exit 1 if RSS did not come back within the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import viewer  # noqa: E402  (bench/viewer.py: counting viewers)
import whep_client  # noqa: E402


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cut_post(url: str, body: str) -> None:
    """A POST whose body stops half way: the connection is closed."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port or 80), timeout=5) as s:
        data = body.encode()
        head = (
            f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        s.sendall(head + data[: len(data) // 2])


async def abandoned_offer(url: str, http) -> None:
    """An offer POSTed and never used: the answer is read, no ICE follows."""
    pc = await whep_client.make_offer()
    try:
        async with http.post(url, data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as resp:
            await resp.text()
    finally:
        await pc.close()


async def whole_session(url: str, http, timeout: float) -> str | None:
    v = viewer.CountViewer(0)
    await v.start(url, http, timeout)
    err = v.error
    await v.stop(http)
    viewer.COUNTS.pop(id(v.counter), None) if v.counter else None
    return err


async def main_async(args) -> int:
    import aiohttp

    viewer.install_counting_decoder()
    whep_client.use_loopback_candidates(args.url)
    offer_pc = await whep_client.make_offer()
    offer_sdp = offer_pc.localDescription.sdp
    await offer_pc.close()
    out: dict = {"sessions": args.sessions}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        steady = viewer.CountViewer(0)
        await steady.start(args.url, http, args.timeout)
        if steady.error:
            print(json.dumps({"error": f"steady viewer: {steady.error}"}))
            return 1
        await asyncio.sleep(args.warmup)
        base = rss_kib(args.pid)
        out["baseline_kib"] = base
        peak, failures, t0 = base, [], time.monotonic()
        kinds = {"whole": 0, "cut_post": 0, "abandoned": 0}
        for i in range(0, args.sessions, args.batch):
            jobs = []
            for j in range(i, min(i + args.batch, args.sessions)):
                if j % 3 == 2:
                    if (j // 3) % 2 == 0:
                        kinds["cut_post"] += 1
                        jobs.append(asyncio.to_thread(cut_post, args.url, offer_sdp))
                    else:
                        kinds["abandoned"] += 1
                        jobs.append(abandoned_offer(args.url, http))
                else:
                    kinds["whole"] += 1
                    jobs.append(whole_session(args.url, http, args.timeout))
            for r in await asyncio.gather(*jobs, return_exceptions=True):
                if isinstance(r, BaseException):
                    failures.append(f"{type(r).__name__}: {r}")
                elif isinstance(r, str):
                    failures.append(r)
            peak = max(peak, rss_kib(args.pid))
            if args.progress and (i // args.batch) % 25 == 0:
                print(json.dumps({"done": i + args.batch, "rss_kib": rss_kib(args.pid)}), file=sys.stderr, flush=True)
        out["churn_s"] = round(time.monotonic() - t0, 1)
        out["kinds"] = kinds
        out["failures"] = len(failures)
        out["failure_examples"] = failures[:3]
        out["peak_kib"] = peak
        out["after_churn_kib"] = rss_kib(args.pid)
        f0 = steady.frames()
        samples, back_at = [], None
        t_settle = time.monotonic()
        for s in range(1, args.settle + 1):
            await asyncio.sleep(max(0.0, t_settle + s - time.monotonic()))
            r = rss_kib(args.pid)
            samples.append(r)
            if back_at is None and r <= base + args.bound_kib:
                back_at = s
        out["steady_fps_settle"] = round((steady.frames() - f0) / (time.monotonic() - t_settle), 2)
        out["final_kib"] = samples[-1] if samples else None
        out["back_within_bound_after_s"] = back_at
        out["rss_settle_kib"] = samples
        out["bound_kib"] = args.bound_kib
        await steady.stop(http)
    print(json.dumps(out), flush=True)
    return 0 if out["back_within_bound_after_s"] is not None else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--warmup", type=float, default=8.0)
    p.add_argument("--settle", type=int, default=60)
    p.add_argument("--bound-kib", type=int, default=2048)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--progress", action="store_true")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
