#!/usr/bin/env python3
"""A/B of two node binaries: CPU per frame and RSS with one viewer, runs interleaved A B A B ...

For build settings that should cost nothing (panic strategy, overflow checks): each run starts the
binary with the test pattern, one aiortc viewer for the window, and reads the node's CPU time
(utime + stime from /proc/PID/stat) and frames sent (/metrics) over the window only.

    bench/ab_cpu.py A_BIN B_BIN [--runs 3] [--seconds 20] [--width 640 --height 480]

Prints each run and the medians, and B/A ratios. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CLIENT = os.path.join(ROOT, "tests", "e2e", "whep_client.py")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 (loopback only)
        return r.read().decode()


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def frames_sent(base: str) -> float:
    for line in get(base + "/metrics").splitlines():
        if line.startswith("sutantra_frames_sent_total "):
            return float(line.split()[1])
    return 0.0


def one_run(binary: str, args) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        node = subprocess.Popen(
            [binary, "run", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--source", "test-pattern",
             "--width", str(args.width), "--height", str(args.height), "--fps", "30"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"},
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if json.loads(get(base + "/healthz")).get("status") == "ok":
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{binary}: not healthy")
                time.sleep(0.1)
            viewer = subprocess.Popen([sys.executable, CLIENT, "--url", base + "/whep", "--json", "--seconds",
                                       str(args.seconds + 6)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            while json.loads(get(base + "/healthz")).get("viewers", 0) < 1:
                time.sleep(0.1)
            time.sleep(3)  # past the join keyframe
            c0, f0, t0 = cpu_s(node.pid), frames_sent(base), time.monotonic()
            time.sleep(args.seconds)
            c1, f1, t1 = cpu_s(node.pid), frames_sent(base), time.monotonic()
            rss = rss_kib(node.pid)
            viewer.wait(timeout=60)
            frames = f1 - f0
            return {"cpu_ms_per_frame": round((c1 - c0) * 1000 / max(frames, 1), 3),
                    "cpu_pct": round((c1 - c0) * 100 / (t1 - t0), 2), "frames": int(frames), "rss_kib": rss}
        finally:
            node.terminate()
            node.wait(timeout=10)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    args = p.parse_args()
    res: dict[str, list[dict]] = {"A": [], "B": []}
    for i in range(args.runs):
        for name, binary in (("A", args.a), ("B", args.b)):
            r = one_run(binary, args)
            res[name].append(r)
            print(f"run {i + 1} {name}: {r}", flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("cpu_ms_per_frame", "cpu_pct", "rss_kib")}
           for k, v in res.items()}
    out = {
        "a": args.a, "b": args.b, "a_size": os.path.getsize(args.a), "b_size": os.path.getsize(args.b),
        "median": med,
        "b_over_a": {m: round(med["B"][m] / med["A"][m], 3) for m in med["A"] if med["A"][m]},
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
