#!/usr/bin/env python3
"""Time to the first frame when the node publishes over WHIP, and when a viewer pulls over WHEP.

    whip_first_frame.py --binary before=PATH/TO/UNPATCHED/sutantra \\
                        --binary after=target/release/sutantra [--runs 10]

After one unmeasured publish per endpoint (aiortc's first session pays its lazy imports), for
every run, for each binary in turn (interleaved, the order alternating, so a machine that gets
busier part-way through does not favour one of them):

- whip: one tests/e2e/whip_endpoint.py per DTLS role (aiortc's own answer, a=setup:active, which
  makes the node the DTLS server; and --dtls-role server, a=setup:passive, which makes the node
  the DTLS client, as a relay subscribing to another node is). A fresh node is started with
  `--publish` to it; the figure is the endpoint's own: from the POST arriving to the first
  decoded frame (`first_frame_ms`). The peer in the same run: a fresh aiortc publisher (this
  script, --publisher-child) POSTs to the same endpoint, the same figure.
- whep (unless --no-whep): a fresh node, tests/e2e/whep_client.py POSTs as soon as /healthz
  answers; the figure is the viewer's `first_frame_ms` (POST sent to first decoded frame).

Prints median/min/max per figure and the node/aiortc ratio, and with --json the raw samples.
Loopback only, no STUN (`--ice-server none`). Every child is in its own process group and is
stopped on exit.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
E2E = os.path.join(ROOT, "tests", "e2e")
PY = os.path.join(ROOT, ".venv", "bin", "python3")
if not os.path.exists(PY):
    PY = sys.executable

# The suite's child handling: its process groups, logs in its scratch directory, cleanup.
sys.path.insert(0, HERE)
import suite  # noqa: E402  (bench/suite.py)

suite.TMP = tempfile.mkdtemp(prefix="whip-first-frame-")
TMP = suite.TMP
free_port, stop, cleanup, tail = suite.free_port, suite.stop, suite.cleanup, suite.log_tail


def log(msg: str) -> None:
    print(f"[whip_first_frame {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def spawn(cmd: list[str], name: str, **kw) -> subprocess.Popen:
    return suite.spawn(cmd, log_name=name, **kw)


def get_json(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Endpoint:
    def __init__(self, role: str):
        self.role = role
        self.port = free_port()
        self.p = spawn([PY, os.path.join(E2E, "whip_endpoint.py"), "--port", str(self.port),
                        "--dtls-role", role], f"endpoint-{role}")
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.p.poll() is not None:
                raise SystemExit(f"whip_endpoint.py exited:\n{tail(self.p)}")
            try:
                self.stats()
                return
            except Exception:
                time.sleep(0.05)
        raise SystemExit(f"whip_endpoint.py not ready:\n{tail(self.p)}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/whip"

    def stats(self) -> dict:
        return get_json(f"http://127.0.0.1:{self.port}/_control/stats")

    def next_first_frame(self, before: int, proc: subprocess.Popen, timeout: float = 30.0) -> float:
        """Waits for the endpoint's `before`-th session first frame; returns its POST-to-frame ms."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.stats()
            if len(s["first_frame_ms"]) > before:
                return s["first_frame_ms"][before]
            if proc.poll() is not None:
                raise SystemExit(f"{proc.log_name} exited with {proc.returncode}:\n{tail(proc)}")
            time.sleep(0.02)
        raise SystemExit(f"no first frame at the {self.role} endpoint within {timeout} s; "
                         f"stats {self.stats()}\n{tail(proc)}")


def start_node(binary: str, name: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    data = tempfile.mkdtemp(prefix="data-", dir=TMP)
    cmd = [binary, "run", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--ice-server", "none",
           "--log-level", "warn"] + extra
    return spawn(cmd, name), port


def whip_node(binary: str, label: str, ep: Endpoint) -> float:
    before = len(ep.stats()["first_frame_ms"])
    p, _ = start_node(binary, f"whip-{label}-{ep.role}", ["--publish", ep.url])
    try:
        return ep.next_first_frame(before, p)
    finally:
        stop(p)


def whip_aiortc(ep: Endpoint) -> float:
    before = len(ep.stats()["first_frame_ms"])
    p = spawn([PY, os.path.abspath(__file__), "--publisher-child", ep.url], f"aiortc-{ep.role}")
    try:
        return ep.next_first_frame(before, p)
    finally:
        stop(p)


def whep_node(binary: str, label: str) -> float:
    p, port = start_node(binary, f"whep-{label}", [])
    try:
        end = time.monotonic() + 30
        while True:
            try:
                if get_json(f"http://127.0.0.1:{port}/healthz").get("status") == "ok":
                    break
            except Exception:
                pass
            if time.monotonic() > end or p.poll() is not None:
                raise SystemExit(f"node /healthz not ok:\n{tail(p)}")
            time.sleep(0.02)
        out = subprocess.run([PY, os.path.join(E2E, "whep_client.py"), "--url",
                              f"http://127.0.0.1:{port}/whep", "--seconds", "0.5", "--json"],
                             capture_output=True, text=True, timeout=60, cwd=ROOT)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if "first_frame_ms" not in r:
            raise SystemExit(f"whep_client.py: {r}\n{out.stderr[-2000:]}")
        return r["first_frame_ms"]
    finally:
        stop(p)


# --- the aiortc publisher (a child process, one per run) ------------------------------------------


def publisher_child(url: str) -> int:
    """POSTs a sendonly VP8 offer to `url` (WHIP) and sends 640x480 frames until terminated."""
    import asyncio
    import fractions

    import aiohttp
    import aioice.ice
    import numpy as np
    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from av import VideoFrame

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

    class Pattern(VideoStreamTrack):
        async def recv(self):
            pts, time_base = await self.next_timestamp()
            img = np.zeros((480, 640, 3), dtype=np.uint8)
            img[:, :, 1] = (pts // 3000) % 256
            frame = VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
            return frame

    async def run() -> None:
        pc = RTCPeerConnection()
        pc.addTransceiver(Pattern(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=pc.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as r:
                body = await r.text()
                if r.status != 201:
                    raise SystemExit(f"POST answered {r.status}: {body}")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
        stop_ev = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_ev.set)
        await stop_ev.wait()
        await pc.close()

    asyncio.run(run())
    return 0


# --- report ---------------------------------------------------------------------------------------


def summary(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):7.1f} ({min(xs):.1f}-{max(xs):.1f})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", default=[],
                   help="LABEL=PATH of a sutantra binary (repeatable); default target/release/sutantra")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--roles", default="auto,server", help="endpoint DTLS roles: auto,server")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured publishes per endpoint first")
    p.add_argument("--no-whep", action="store_true", help="skip the WHEP viewer figure")
    p.add_argument("--no-peer", action="store_true", help="skip the aiortc publisher")
    p.add_argument("--json", help="write the raw samples here")
    p.add_argument("--publisher-child", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.publisher_child:
        return publisher_child(args.publisher_child)

    binaries = []
    for b in args.binary or [f"node={os.path.join(ROOT, 'target', 'release', 'sutantra')}"]:
        label, _, path = b.partition("=")
        if not path:
            label, path = os.path.basename(os.path.dirname(os.path.dirname(b))) or "node", b
        if not os.access(path, os.X_OK):
            p.error(f"{path} is not an executable")
        binaries.append((label, path))
    roles = [r for r in args.roles.split(",") if r]

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    endpoints = {role: Endpoint(role) for role in roles}
    samples: dict[str, list[float]] = {}

    def add(key: str, v: float) -> None:
        samples.setdefault(key, []).append(v)

    # The first session an endpoint decodes pays aiortc's lazy imports and codec set-up: one
    # unmeasured publish per endpoint first.
    for role, ep in endpoints.items():
        for _ in range(args.warmup):
            whip_node(binaries[0][1], "warmup", ep)

    for i in range(args.runs):
        # Alternate the order, so neither binary always runs right after the aiortc peer.
        order = binaries if i % 2 == 0 else binaries[::-1]
        for role, ep in endpoints.items():
            for label, path in order:
                add(f"whip {role} {label}", whip_node(path, label, ep))
            if not args.no_peer:
                add(f"whip {role} aiortc", whip_aiortc(ep))
        if not args.no_whep:
            for label, path in order:
                add(f"whep {label}", whep_node(path, label))
        log(f"run {i + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]}" for k, v in samples.items()))

    for ep in endpoints.values():
        stop(ep.p)

    print(f"\nms to the first decoded frame, median (min-max) of {args.runs} fresh starts")
    print("whip: from the POST arriving at whip_endpoint.py (aiortc) to its first decoded frame;")
    print("  endpoint role auto = aiortc answers a=setup:active (the publisher is the DTLS server),")
    print("  server = it answers a=setup:passive (the publisher is the DTLS client)")
    print("whep: tests/e2e/whep_client.py (aiortc), from its POST to its first decoded frame\n")
    for key, xs in samples.items():
        line = f"  {key:<28} {summary(xs)}"
        parts = key.split()
        if parts[0] == "whip" and parts[2] != "aiortc" and f"whip {parts[1]} aiortc" in samples:
            peer = statistics.median(samples[f"whip {parts[1]} aiortc"])
            line += f"   x{statistics.median(xs) / peer:.2f} of aiortc"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": args.runs, "binaries": dict(binaries), "samples_ms": samples}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
