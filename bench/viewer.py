#!/usr/bin/env python3
"""Benchmark viewers (aiortc), the same for every sender (the node and the aiortc peer).

decode mode: one viewer that decodes every frame and reads the latency stamp; it reuses
tests/e2e/whep_client.py (run_viewer) and adds the raw samples and p99. It polls the sender's
/healthz until it answers before POSTing, so it can be started before the sender (time to first
frame from process start; with --ready it prints READY once aiortc is imported). Prints
"FIRST <unix-time>" at the first decoded frame, then one JSON document:

    viewer.py decode --url http://127.0.0.1:PORT/whep --seconds 30 [--samples FILE.csv]

count mode: many cheap viewers in one process, driven by commands on stdin, for memory, cost per
viewer and capacity. aiortc always decodes in its receiver; here its decoder thread is replaced
by one that only counts the complete frames that leave the jitter buffer (RTP, SRTP, jitter
buffer, NACK and RTCP still run). Commands, each answered by one JSON line:

    add N        start N more viewers; answers when each has its first frame (or failed)
    measure S    frames per viewer over S seconds -> {"fps": [...], "mean_payload_kbps": ...,
                 "loadgen_cpu_frac": ...} (payload: VP8 frames as reassembled, without RTP headers)
    quit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

import whep_client  # noqa: E402  (tests/e2e/whep_client.py)


def wait_healthz(url: str, timeout: float) -> None:
    health = urllib.parse.urljoin(url, "/healthz")
    end = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        if time.monotonic() > end:
            raise SystemExit(f"viewer: {health} did not answer within {timeout:.0f} s")
        time.sleep(0.02)


# ---------------------------------------------------------------------------------------------
# decode mode


def decode_mode(args) -> int:
    samples: list[tuple[float, float]] = []  # (arrival unix s, latency ms)
    first_wall: list[float] = []

    class Window(whep_client.Window):
        def __init__(self, seconds):
            super().__init__(seconds)
            first_wall.append(time.time())
            print(f"FIRST {first_wall[0]:.6f}", flush=True)
            self.arrivals: list[float] = []

        def add(self, frame, now_us):
            n = len(self.latencies)
            super().add(frame, now_us)
            self.arrivals.append(now_us / 1e6)
            if len(self.latencies) > n:
                samples.append((now_us / 1e6, self.latencies[-1]))

        def report(self):
            out = super().report()
            vals = sorted(self.latencies)
            out["latency_ms"]["p99"] = whep_client.percentile(vals, 99)
            if len(self.arrivals) > 1:
                span = self.arrivals[-1] - self.arrivals[0]
                out["fps_arrivals"] = round((len(self.arrivals) - 1) / span, 3) if span > 0 else None
            return out

    whep_client.Window = Window
    whep_client.use_loopback_candidates(args.url)
    import aiohttp  # noqa: F401  (imported before READY: its import time is not the sender's)
    import aiortc  # noqa: F401

    if args.ready:
        print("READY", flush=True)
    wait_healthz(args.url, args.connect_timeout)
    ns = argparse.Namespace(
        url=args.url, seconds=args.seconds, token=None, expect_width=None, expect_height=None,
        viewers=1, drop_every=0, pli=0, connect_timeout=args.connect_timeout, json=True,
    )
    results = asyncio.run(asyncio.wait_for(whep_client.run(ns), args.connect_timeout + args.seconds + 30))
    r = results[0]
    if first_wall:
        r["first_frame_unix"] = first_wall[0]
    if args.samples:
        with open(args.samples, "w") as f:
            f.write("arrival_unix_s,latency_ms\n")
            for t, lat in samples:
                f.write(f"{t:.6f},{lat:.3f}\n")
    print(json.dumps(r), flush=True)
    return 0 if "error" not in r else 1


# ---------------------------------------------------------------------------------------------
# count mode

COUNTS: dict[int, list[int]] = {}  # id(track queue) -> [frames]


def install_counting_decoder() -> None:
    from aiortc import rtcrtpreceiver

    def counting_worker(loop, input_q, output_q, decode_error):
        counter = COUNTS.setdefault(id(output_q), [0, 0])  # frames, VP8 payload bytes
        while True:
            task = input_q.get()
            if task is None:
                break
            counter[0] += 1
            counter[1] += len(task[1].data)

    rtcrtpreceiver.decoder_worker = counting_worker


class CountViewer:
    def __init__(self, index: int):
        self.index = index
        self.pc = None
        self.counter = None
        self.session_url = None
        self.error = None
        self.first_ms = None

    async def start(self, url: str, http, timeout: float) -> None:
        from aiortc import RTCSessionDescription

        t0 = time.monotonic()
        try:
            self.pc = await asyncio.wait_for(whep_client.make_offer(), timeout)
            got = asyncio.get_running_loop().create_future()

            @self.pc.on("track")
            def on_track(track):
                if not got.done():
                    got.set_result(track)

            async with http.post(url, data=self.pc.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as resp:
                body = await resp.text()
                if resp.status != 201:
                    raise RuntimeError(f"POST answered {resp.status}: {body.strip()[:200]}")
                self.session_url = urllib.parse.urljoin(url, resp.headers["Location"])
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
            track = await asyncio.wait_for(got, timeout)
            key = id(track._queue)
            end = time.monotonic() + timeout
            while COUNTS.get(key, [0])[0] == 0:
                if time.monotonic() > end:
                    raise RuntimeError("no frame within the timeout")
                await asyncio.sleep(0.01)
            self.counter = COUNTS[key]
            self.first_ms = round((time.monotonic() - t0) * 1000, 1)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"

    def frames(self) -> int:
        return self.counter[0] if self.counter else 0

    def bytes(self) -> int:
        return self.counter[1] if self.counter else 0

    async def stop(self, http) -> None:
        if self.session_url:
            try:
                async with http.delete(self.session_url):
                    pass
            except Exception:
                pass
        if self.pc:
            try:
                await asyncio.wait_for(self.pc.close(), 5)
            except Exception:
                pass


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def count_mode(args) -> int:
    import aiohttp

    install_counting_decoder()
    whep_client.use_loopback_candidates(args.url)
    wait_healthz(args.url, args.connect_timeout)
    viewers: list[CountViewer] = []
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        while True:
            line = (await reader.readline()).decode().strip()
            if not line or line == "quit":
                break
            cmd, _, arg = line.partition(" ")
            if cmd == "add":
                new = [CountViewer(len(viewers) + i) for i in range(int(arg))]
                viewers.extend(new)
                # Connect in small batches: many DTLS handshakes at once time out in Python.
                for i in range(0, len(new), args.batch):
                    await asyncio.gather(*(v.start(args.url, http, args.connect_timeout) for v in new[i : i + args.batch]))
                ok = [v for v in new if v.error is None]
                out = {"viewers": len(viewers), "added_ok": len(ok),
                       "errors": [v.error for v in new if v.error][:3],
                       "first_frame_ms": [v.first_ms for v in ok]}
            elif cmd == "measure":
                secs = float(arg)
                live = [v for v in viewers if v.error is None]
                f0, b0, c0, t0 = [v.frames() for v in live], [v.bytes() for v in live], cpu_seconds(), time.monotonic()
                await asyncio.sleep(secs)
                f1, b1, c1, t1 = [v.frames() for v in live], [v.bytes() for v in live], cpu_seconds(), time.monotonic()
                dt = t1 - t0
                fps = [round((b - a) / dt, 2) for a, b in zip(f0, f1)]
                kbps = [(b - a) * 8 / dt / 1000 for a, b in zip(b0, b1)]
                out = {"viewers": len(live), "seconds": round(dt, 3), "fps": fps,
                       "min_fps": min(fps) if fps else None,
                       "mean_payload_kbps": round(sum(kbps) / len(kbps), 1) if kbps else None,
                       "loadgen_cpu_frac": round((c1 - c0) / dt, 3)}
            else:
                out = {"error": f"unknown command {line!r}"}
            print(json.dumps(out), flush=True)
        await asyncio.gather(*(v.stop(http) for v in viewers))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["decode", "count"])
    p.add_argument("--url", required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--samples", help="decode: write arrival,latency samples to this CSV")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--batch", type=int, default=4, help="count: viewers connecting at once")
    p.add_argument("--ready", action="store_true", help="decode: print READY once imported, before polling")
    args = p.parse_args()
    if args.mode == "decode":
        return decode_mode(args)
    return asyncio.run(count_mode(args))


if __name__ == "__main__":
    sys.exit(main())
