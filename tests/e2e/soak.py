#!/usr/bin/env python3
"""The soak: the Sutantra node run for a long time under everything it does at once.

It starts, on loopback only:
  - the test CometBFT server (fake_cometbft.py, a generated chain that grows a block every few
    seconds), which the node's light validator syncs from and submits attestations to,
  - an independent WHIP endpoint (whip_endpoint.py) that the node publishes to,
  - the node (SUTANTRA_BIN or target/release/sutantra), test pattern at 30 fps,
  - a steady aiortc viewer for the whole run (its frames per interval are recorded),
  - churning viewers: one joins every few seconds and leaves after a few seconds; every third one
    vanishes without a DELETE (its process is killed mid-stream).

Every sample interval it records the node's RSS, open descriptors, threads, bytes written
(/proc/PID/io write_bytes), the store's size, the steady viewer's fps, the WHIP endpoint's fps and
the sessions open. After the warm-up it fails on growth:

  RSS: the least-squares slope over the samples after the warm-up, times that span, must stay under
       --max-rss-growth-mib; descriptors and threads (which move with the sessions open at the
       moment): the lowest value of the last third of the samples after the warm-up may exceed the
       lowest of the first third by at most --max-fd-growth / --max-thread-growth; the steady
       viewer's mean fps over the run must be at least --min-fps.

    soak.py --minutes 60                       # the full soak (scripts/soak.sh)
    soak.py --minutes 3 --warmup-minutes 1 --sample-seconds 10   # the CI version
    soak.py ... --out DIR                      # samples.csv and summary.json into DIR

Exit status 0 when every check held, 1 when one failed (the summary says which), 2 on bad
arguments or when something could not start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (loopback only)
        return json.loads(r.read().decode())


def http_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310
        return r.read().decode()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def wait_line(proc: subprocess.Popen, prefix: str, timeout: float, what: str) -> str:
    """The first stdout line of `proc` that starts with `prefix`."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"soak: {what} ended before it was ready (exit {proc.poll()})")
        if line.startswith(prefix):
            return line.strip()
    raise SystemExit(f"soak: {what} not ready within {timeout} s")


class Proc:
    """/proc figures of one process."""

    def __init__(self, pid: int):
        self.pid = pid

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def threads(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        return 0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def io(self) -> dict[str, int]:
        out = {}
        with open(f"/proc/{self.pid}/io") as f:
            for line in f:
                k, v = line.split(":")
                out[k.strip()] = int(v)
        return out


class Churn(threading.Thread):
    """Viewers that come and go: one every `every` seconds, each for 2-5 s of video; every third
    one is SIGKILLed mid-stream (no DELETE, no DTLS close: it just vanishes)."""

    def __init__(self, whep: str, every: float, python: str):
        super().__init__(daemon=True)
        self.whep, self.every, self.python = whep, every, python
        self.stop = threading.Event()
        self.started = self.finished = self.vanished = self.failed = 0
        self.live: list[tuple[subprocess.Popen, float | None]] = []

    def spawn(self, seconds: float) -> subprocess.Popen:
        return subprocess.Popen(
            [self.python, os.path.join(HERE, "whep_client.py"), "--url", self.whep, "--json",
             "--seconds", f"{seconds:.1f}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
        )

    def reap(self) -> None:
        now = time.monotonic()
        keep = []
        for p, kill_at in self.live:
            if kill_at is not None and now >= kill_at and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
                self.vanished += 1
                continue
            if p.poll() is None:
                keep.append((p, kill_at))
                continue
            if kill_at is None:
                out = p.stdout.read() if p.stdout else ""
                try:
                    ok = p.returncode == 0 and json.loads(out).get("frames", 0) > 0
                except ValueError:
                    ok = False
                self.finished += 1
                self.failed += 0 if ok else 1
        self.live = keep

    def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.reap()
            if time.monotonic() >= next_at and len(self.live) < 3:
                n += 1
                stay = random.uniform(2.0, 5.0)
                if n % 3 == 0:
                    # Starts, decodes a while, then vanishes (killed ~ first frame + stay).
                    self.live.append((self.spawn(60.0), time.monotonic() + 3.0 + stay))
                else:
                    self.live.append((self.spawn(stay), None))
                self.started += 1
                next_at = time.monotonic() + self.every
            time.sleep(0.2)
        for p, _ in self.live:
            p.kill()
            p.wait()


class Steady(threading.Thread):
    """Reads the steady viewer's progress lines (frames per interval) from its stderr."""

    def __init__(self, proc: subprocess.Popen):
        super().__init__(daemon=True)
        self.proc = proc
        self.lock = threading.Lock()
        self.frames = 0
        self.intervals: list[int] = []
        self.other: list[str] = []

    def run(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                j = json.loads(line)
            except ValueError:
                self.other.append(line.rstrip())
                self.other = self.other[-50:]
                continue
            if "progress_s" in j:
                with self.lock:
                    self.frames += j["frames"]
                    self.intervals.append(j["frames"])

    def take(self) -> int:
        with self.lock:
            f, self.frames = self.frames, 0
            return f


def slope_per_s(ts: list[float], ys: list[float]) -> float:
    n = len(ts)
    if n < 2:
        return 0.0
    mt, my = sum(ts) / n, sum(ys) / n
    den = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (y - my) for t, y in zip(ts, ys)) / den if den else 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--warmup-minutes", type=float, default=None, help="default: a quarter of the run, at most 15")
    p.add_argument("--sample-seconds", type=float, default=60.0)
    p.add_argument("--churn-every", type=float, default=4.0, help="seconds between joining viewers")
    p.add_argument("--block-every", type=float, default=5.0, help="seconds between new chain blocks")
    p.add_argument("--validators", type=int, default=16)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--max-rss-growth-mib", type=float, default=1.0)
    p.add_argument("--max-fd-growth", type=int, default=4)
    p.add_argument("--max-thread-growth", type=int, default=2)
    p.add_argument("--min-fps", type=float, default=29.5)
    p.add_argument("--out", help="directory for samples.csv and summary.json")
    p.add_argument("--bin", default=os.environ.get("SUTANTRA_BIN", os.path.join(ROOT, "target", "release", "sutantra")))
    args = p.parse_args()
    if not os.access(args.bin, os.X_OK):
        print(f"soak: {args.bin} is not an executable: build it (cargo build --release -p sutantra) or set SUTANTRA_BIN", file=sys.stderr)
        return 2
    warmup = args.warmup_minutes if args.warmup_minutes is not None else min(15.0, args.minutes / 4)
    python = sys.executable
    work = tempfile.mkdtemp(prefix="sutantra-soak-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    procs: list[subprocess.Popen] = []
    ok_to_clean = False

    def start(cmd: list[str], **kw) -> subprocess.Popen:
        pr = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, text=True, **kw)
        procs.append(pr)
        return pr

    try:
        rpc_port, ctl_port = free_port(), free_port()
        rpc = start([python, os.path.join(HERE, "fake_cometbft.py"), "--generate", "20", "--validators",
                     str(args.validators), "--port", str(rpc_port), "--control-port", str(ctl_port)],
                    stdout=subprocess.PIPE, stderr=open(os.path.join(work, "cometbft.log"), "w"))
        wait_line(rpc, "chain ", 60, "the test CometBFT server")
        info = http_json(f"http://127.0.0.1:{ctl_port}/_control/info")
        whip_port = free_port()
        whip = start([python, os.path.join(HERE, "whip_endpoint.py"), "--port", str(whip_port)],
                     stdout=subprocess.PIPE, stderr=open(os.path.join(work, "whip.log"), "w"))
        wait_line(whip, "{", 60, "the WHIP endpoint")
        config = os.path.join(work, "node.toml")
        with open(config, "w") as f:
            f.write(
                f'[chain]\nchain_id = "{info["chain_id"]}"\nrpc = ["http://127.0.0.1:{rpc_port}"]\n'
                f'trust_height = 1\ntrust_hash = "{info["hashes"]["1"]}"\ntrusting_period_s = 1209600\n'
                f'clock_drift_s = 10\ntrust_level = "1/3"\npoll_interval_ms = 1000\n\n'
                f'[attest]\nsegment_ms = 10000\nstream_id = "soak"\n\n'
                f'[[publish]]\nurl = "http://127.0.0.1:{whip_port}/whip"\n'
            )
        port = free_port()
        node_log = open(os.path.join(work, "node.log"), "w")
        node = start([args.bin, "run", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--config", config,
                      "--source", "test-pattern", "--width", str(args.width), "--height", str(args.height),
                      "--fps", "30"], stdout=node_log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "info"})
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_json(base + "/healthz", 2).get("status") == "ok":
                    break
            except OSError:
                pass
            if node.poll() is not None or time.monotonic() > deadline:
                print(f"soak: the node did not become healthy (exit {node.poll()}); log in {work}/node.log", file=sys.stderr)
                return 2
            time.sleep(0.2)
        me = Proc(node.pid)
        total_s = args.minutes * 60
        steady_p = start([python, os.path.join(HERE, "whep_client.py"), "--url", base + "/whep", "--json",
                          "--seconds", str(total_s + 30), "--progress", "5"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        steady = Steady(steady_p)
        steady.start()
        churn = Churn(base + "/whep", args.churn_every, python)
        grow_stop = threading.Event()

        def grow() -> None:
            while not grow_stop.wait(args.block_every):
                try:
                    http_json(f"http://127.0.0.1:{ctl_port}/_control/grow?n=1")
                except OSError:
                    pass

        threading.Thread(target=grow, daemon=True).start()
        # Wait for the steady viewer's first frames, then start the churn.
        t_wait = time.monotonic() + 30
        while not steady.intervals and time.monotonic() < t_wait:
            time.sleep(0.5)
        churn.start()
        t0 = time.monotonic()
        io0 = me.io()
        samples = []
        header = ("t_s", "rss_kib", "fds", "threads", "write_bytes", "wchar", "store_bytes", "steady_fps",
                  "whip_fps", "trusted_height", "viewers_joined", "churn_started", "churn_vanished", "sessions")
        print("  ".join(header), flush=True)
        steady.take()
        last_t = t0
        while time.monotonic() - t0 < total_s:
            time.sleep(max(0.0, min(args.sample_seconds, total_s - (time.monotonic() - t0))))
            if node.poll() is not None:
                print(f"soak: the node exited ({node.returncode}); log in {work}/node.log", file=sys.stderr)
                return 1
            now = time.monotonic()
            io = me.io()
            m = http_text(base + "/metrics")
            whip_stats = http_json(f"http://127.0.0.1:{whip_port}/_control/stats")
            store = sum(os.path.getsize(os.path.join(data, n)) for n in os.listdir(data) if n.endswith(".redb"))
            frames = steady.take()
            row = {
                "t_s": round(now - t0, 1), "rss_kib": me.rss_kib(), "fds": me.fds(), "threads": me.threads(),
                "write_bytes": io.get("write_bytes", 0) - io0.get("write_bytes", 0),
                "wchar": io.get("wchar", 0) - io0.get("wchar", 0), "store_bytes": store,
                "steady_fps": round(frames / max(now - last_t, 1e-6), 2),
                "whip_fps": whip_stats.get("fps_last_10s"),
                "trusted_height": metric(m, "sutantra_chain_trusted_height"),
                "viewers_joined": metric(m, "sutantra_viewers_joined_total"),
                "churn_started": churn.started, "churn_vanished": churn.vanished,
                "sessions": http_json(base + "/healthz").get("sessions"),
            }
            last_t = now
            samples.append(row)
            print("  ".join(str(row[k]) for k in header), flush=True)
        churn.stop.set()
        grow_stop.set()
        elapsed = time.monotonic() - t0
        after = [s for s in samples if s["t_s"] >= warmup * 60]
        if len(after) < 2:
            after = samples[-2:]
        ts = [s["t_s"] for s in after]
        rss_slope = slope_per_s(ts, [s["rss_kib"] / 1024 for s in after])
        span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
        rss_growth = rss_slope * span
        fps_all = [s["steady_fps"] for s in samples]
        steady_total = sum(steady.intervals)
        mean_fps = steady_total / max(5.0 * len(steady.intervals), 1e-6)
        last = samples[-1]
        # Descriptors and threads move with the sessions open at the moment of a sample (the
        # churn goes on); growth is the lowest value of the last third of the samples after the
        # warm-up against the lowest of the first third: like against like, a leak shows.
        third = max(1, len(after) // 3)

        def low(rows, key):
            return min(r[key] for r in rows)

        summary = {
            "minutes": round(elapsed / 60, 2), "warmup_minutes": warmup, "samples": len(samples),
            "rss_mib_first": round(samples[0]["rss_kib"] / 1024, 2), "rss_mib_last": round(last["rss_kib"] / 1024, 2),
            "rss_mib_max": round(max(s["rss_kib"] for s in samples) / 1024, 2),
            "rss_slope_mib_per_h_after_warmup": round(rss_slope * 3600, 3),
            "rss_growth_mib_after_warmup": round(rss_growth, 3),
            "fds_after_warmup": [min(s["fds"] for s in after), max(s["fds"] for s in after)],
            "fd_growth": low(after[-third:], "fds") - low(after[:third], "fds"),
            "threads_after_warmup": [min(s["threads"] for s in after), max(s["threads"] for s in after)],
            "thread_growth": low(after[-third:], "threads") - low(after[:third], "threads"),
            "steady_fps_min_5s": round(min(steady.intervals[1:] or [0]) / 5.0, 1),
            "steady_fps_min_sample": min(fps_all), "steady_fps_mean": round(mean_fps, 2),
            "write_bytes_per_hour": round(last["write_bytes"] * 3600 / elapsed),
            "wchar_per_hour": round(last["wchar"] * 3600 / elapsed),
            "store_bytes_last": last["store_bytes"],
            "trusted_height_last": last["trusted_height"],
            "churn": {"started": churn.started, "finished": churn.finished, "vanished": churn.vanished,
                      "failed": churn.failed},
        }
        failures = []
        if rss_growth > args.max_rss_growth_mib:
            failures.append(f"RSS grew {rss_growth:.2f} MiB after the warm-up (limit {args.max_rss_growth_mib})")
        if summary["fd_growth"] > args.max_fd_growth:
            failures.append(f"open descriptors grew by {summary['fd_growth']} (limit {args.max_fd_growth})")
        if summary["thread_growth"] > args.max_thread_growth:
            failures.append(f"threads grew by {summary['thread_growth']} (limit {args.max_thread_growth})")
        if mean_fps < args.min_fps:
            failures.append(f"the steady viewer averaged {mean_fps:.2f} fps (need {args.min_fps})")
        if steady_p.poll() is not None:
            failures.append(f"the steady viewer ended early: {steady.other[-5:]}")
        if churn.started < 3:
            failures.append(f"only {churn.started} churning viewers started")
        if churn.failed > max(1, churn.finished // 10):
            failures.append(f"{churn.failed} of {churn.finished} churning viewers decoded nothing")
        if not last["trusted_height"] or last["trusted_height"] < 20:
            failures.append(f"the light validator did not keep up: trusted height {last['trusted_height']}")
        if (whip_stats.get("fps_last_10s") or 0) < 25:
            failures.append(f"the WHIP endpoint saw {whip_stats.get('fps_last_10s')} fps at the end")
        summary["failures"] = failures
        summary["ok"] = not failures
        print(json.dumps(summary, indent=1), flush=True)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "samples.csv"), "w") as f:
                f.write(",".join(header) + "\n")
                for s in samples:
                    f.write(",".join(str(s[k]) for k in header) + "\n")
            with open(os.path.join(args.out, "summary.json"), "w") as f:
                json.dump(summary, f, indent=1)
        ok_to_clean = not failures
        return 0 if not failures else 1
    finally:
        for pr in reversed(procs):
            if pr.poll() is None:
                pr.terminate()
                try:
                    pr.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pr.kill()
        if ok_to_clean:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"soak: logs kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
