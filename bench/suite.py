#!/usr/bin/env python3
"""The whole-process benchmark suite of issue 7 (run it through bench/run.sh).

Runs the node, its peers (ffmpeg's libvpx encoder, an aiortc sender) and aiortc viewers on
loopback, measures each figure with its peer in the same run, prints a markdown table, keeps the
raw samples in a results directory and (full runs) rewrites the generated part of BENCHMARKS.md.

    suite.py --binary target/release/sutantra [--quick] [--only encode,latency,...] [--out DIR]

Phases: encode (CPU per stream, memory and cost per viewer, both sizes, node/ffmpeg/aiortc),
latency (glass-to-glass and time to first frame, node and aiortc), browser (glass-to-glass in
headless Chromium, node with and without the playout-delay extension and aiortc), pacing (soak with the other
core loaded: pacing, fps, memory growth), capacity (viewers one core serves), churn (RSS after
viewer sessions come and go, bench/churn.py), whip (WHIP POST -> first frame at an aiortc endpoint,
bench/whip_first_frame.py), still (CPU and PSNR on a still scene, `cargo bench --bench still`),
verify and media (cargo benches), size (aarch64 binary). Every child process is in its own process group and is
killed on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
CLK = os.sysconf("SC_CLK_TCK")

SIZES = [  # name, width, height, kbit/s
    ("640x480", 640, 480, 1000),
    ("1280x720", 1280, 720, 2500),
]

FULL = dict(cpu_s=30, mem_s=8, viewer_steps=[1, 4, 16], lat_s=60, ttff_trials=3, soak_s=180,
            soak_warmup_s=20, cap_step=16, cap_s=6, cap_max=160, verify_budget="1", media_frames=300,
            speed_frames=150, browser_s=45, browser_rounds=3, churn_sessions=1000, churn_settle_s=60,
            still_frames=300, still_reps=5, whip_runs=10)
QUICK = dict(cpu_s=6, mem_s=3, viewer_steps=[1, 4, 16], lat_s=8, ttff_trials=1, soak_s=20,
             soak_warmup_s=5, cap_step=16, cap_s=4, cap_max=64, verify_budget="0.2", media_frames=60,
             speed_frames=40, browser_s=8, browser_rounds=1, churn_sessions=60, churn_settle_s=15,
             still_frames=60, still_reps=1, whip_runs=2)
PHASES = ["encode", "latency", "browser", "pacing", "capacity", "churn", "whip", "still", "verify", "media", "speed",
          "size"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Fail(Exception):
    pass


# --- child processes ----------------------------------------------------------------------------

CHILDREN: list[subprocess.Popen] = []
TMP = ""  # made in main(): this run's scratch directory (logs, data dirs), removed on exit


def spawn(cmd: list[str], *, log_name: str | None = None, stdin=None, stdout=None, cpu: str | None = None,
          **kw) -> subprocess.Popen:
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    out = stdout
    if out is None:
        out = open(os.path.join(TMP, (log_name or "child") + ".log"), "ab")
    p = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=subprocess.STDOUT if stdout is None else
                         open(os.path.join(TMP, (log_name or "child") + ".err"), "ab"),
                         start_new_session=True, cwd=ROOT, **kw)
    p.log_name = log_name or "child"
    CHILDREN.append(p)
    return p


def stop(p: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the child's process group (only processes this suite started), then SIGKILL."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)


def cleanup() -> None:
    for p in list(CHILDREN):
        stop(p, 2.0)
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def on_signal(signum, _frame):
    raise SystemExit(f"interrupted by signal {signum}")


def log_tail(p: subprocess.Popen, n: int = 15) -> str:
    path = os.path.join(TMP, p.log_name + ".log")
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthz(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Fail(f"{proc.log_name} exited with {proc.returncode} before /healthz answered:\n{log_tail(proc)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                h = json.loads(r.read())
                if h.get("status") == "ok":
                    return h
        except Exception:
            pass
        time.sleep(0.02)
    raise Fail(f"{proc.log_name}: /healthz not ok within {timeout:.0f} s:\n{log_tail(proc)}")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime, stime (fields 14, 15)


def mem_kib(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def udp_errors() -> dict:
    """System-wide UDP RcvbufErrors/SndbufErrors (/proc/net/snmp): loss in the kernel's socket
    buffers, i.e. a receiver (or sender) that did not keep up."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    d = dict(zip(rows[0][1:], (int(x) for x in rows[1][1:])))
    return {k: d.get(k, 0) for k in ("RcvbufErrors", "SndbufErrors")}


def metrics(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    m: dict = {"_t": time.monotonic(), "buckets": [], "capture_buckets": []}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        mm = re.match(r'sutantra_frame_(send|capture)_lateness_us_bucket\{le="([^"]+)"\}', name)
        if mm:
            le = float("inf") if mm.group(2) == "+Inf" else float(mm.group(2))
            key = "buckets" if mm.group(1) == "send" else "capture_buckets"
            m[key].append((le, float(value)))
        else:
            m[name] = float(value)
    return m


def hist_percentiles(m0: dict, m1: dict, which: str = "send") -> dict:
    """p50/p99 (bucket upper bounds, µs) and max bucket of a lateness histogram between m0, m1:
    `send` (frame handed to the viewers, encode included) or `capture` (the frame clock's own)."""
    key = "buckets" if which == "send" else "capture_buckets"
    if not m1.get(key):
        return {}
    b0 = dict(m0.get(key, []))
    cum = [(le, c - b0.get(le, 0.0)) for le, c in m1[key]]
    total = cum[-1][1]
    if total <= 0:
        return {"count": 0}

    def q(p):
        for le, c in cum:
            if c >= p * total:
                return le
        return float("inf")

    maxb = next(le for le, c in cum if c >= total)
    base = f"sutantra_frame_{which}_lateness_us"
    n = m1.get(f"{base}_count", 0) - m0.get(f"{base}_count", 0)
    s = m1.get(f"{base}_sum", 0) - m0.get(f"{base}_sum", 0)
    return {"count": int(total), "p50_le_us": q(0.5), "p99_le_us": q(0.99), "max_le_us": maxb,
            "mean_us": round(s / n, 1) if n else None,
            "lifetime_max_us": m1.get(f"{base}_max")}


# --- the senders ----------------------------------------------------------------------------------


class Sender:
    def __init__(self, kind: str, proc: subprocess.Popen, port: int, spawned: float):
        self.kind, self.proc, self.port, self.spawned = kind, proc, port, spawned

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/whep"


def start_node(args, source: str, w: int, h: int, kbps: int, name: str, cpu: str | None = None,
               port: int | None = None, send_offset_ms: int = 0, extra_toml: str = "") -> Sender:
    port = port or free_port()
    data = tempfile.mkdtemp(prefix="data-", dir=TMP)
    # The encoder speed the ffmpeg peer and the in-process bench use too (BENCH_CPU_USED).
    conf = os.path.join(data, "bench.toml")
    with open(conf, "w") as f:
        f.write(f"[encoder]\ncpu_used = {args.cpu_used}\nsend_offset_ms = {send_offset_ms}\n{extra_toml}")
    cmd = [args.binary, "run", "--config", conf, "--source", source, "--width", str(w), "--height", str(h),
           "--bitrate", str(kbps), "--listen", f"127.0.0.1:{port}", "--data-dir", data,
           "--ice-server", "none", "--max-viewers", "256", "--log-level", "warn"]
    t = time.time()
    p = spawn(cmd, log_name=name, cpu=cpu)
    return Sender("node", p, port, t)


def start_peer(y4m: str, kbps: int, name: str, stamp: bool = False, port: int | None = None,
               cpu: str | None = None) -> Sender:
    port = port or free_port()
    cmd = [PY, os.path.join(HERE, "peer_sender.py"), "--listen", f"127.0.0.1:{port}", "--y4m", y4m,
           "--bitrate-kbps", str(kbps)] + (["--stamp"] if stamp else [])
    t = time.time()
    p = spawn(cmd, log_name=name, cpu=cpu)
    return Sender("aiortc", p, port, t)


# --- the viewers ----------------------------------------------------------------------------------


class DecodeViewer:
    """bench/viewer.py decode: one decoding viewer; FIRST line, then a JSON line."""

    def __init__(self, url: str, seconds: float, name: str, samples: str | None = None, ready: bool = False,
                 cpu: str | None = None):
        cmd = [PY, os.path.join(HERE, "viewer.py"), "decode", "--url", url, "--seconds", str(seconds)]
        if samples:
            cmd += ["--samples", samples]
        if ready:
            cmd += ["--ready"]
        self.p = spawn(cmd, log_name=name, stdout=subprocess.PIPE, cpu=cpu)
        self.first: float | None = None

    def wait_ready(self) -> None:
        """The viewer has imported aiortc and is about to poll the sender's /healthz."""
        line = self.p.stdout.readline().decode()
        if line.strip() != "READY":
            raise Fail(f"{self.p.log_name}: expected READY, got {line.strip()[:300]!r}")

    def wait_first(self) -> float:
        line = self.p.stdout.readline().decode()
        if not line.startswith("FIRST "):
            rest = line + self.p.stdout.read().decode()
            raise Fail(f"{self.p.log_name}: no first frame: {rest.strip()[:500]}")
        self.first = float(line.split()[1])
        return self.first

    def result(self, timeout: float = 60) -> dict:
        out, _ = self.p.communicate(timeout=timeout)
        stop(self.p)
        lines = [l for l in out.decode().splitlines() if l.startswith("{")]
        if not lines:
            raise Fail(f"{self.p.log_name}: no result")
        return json.loads(lines[-1])


class CountViewers:
    """bench/viewer.py count: cheap counting viewers driven over stdin."""

    def __init__(self, url: str, name: str, cpu: str | None = None):
        cmd = [PY, os.path.join(HERE, "viewer.py"), "count", "--url", url]
        self.p = spawn(cmd, log_name=name, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cpu=cpu)

    def cmd(self, line: str) -> dict:
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        out = self.p.stdout.readline().decode()
        if not out:
            raise Fail(f"{self.p.log_name} ended: {open(os.path.join(TMP, self.p.log_name + '.err')).read()[-800:]}")
        return json.loads(out)

    def close(self) -> None:
        try:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.flush()
            self.p.wait(15)
        except Exception:
            pass
        stop(self.p)


# --- phases ---------------------------------------------------------------------------------------


def make_y4m(args, name: str, w: int, h: int) -> str:
    path = os.path.join(args.cache, f"testsrc2_{w}x{h}_30_10s.y4m")
    if not os.path.exists(path):
        os.makedirs(args.cache, exist_ok=True)
        log(f"generating {path} (ffmpeg testsrc2, 10 s, looped by the senders)")
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size={w}x{h}:rate=30", "-t", "10", "-pix_fmt", "yuv420p", path + ".tmp.y4m"],
                       check=True)
        os.replace(path + ".tmp.y4m", path)
    return path


def measure_sender_cpu(args, s: Sender, name: str, res: dict) -> None:
    """One decoding viewer; CPU of the sender over cpu_s seconds from its first frame."""
    v = DecodeViewer(s.url, args.c["cpu_s"] + 1.5, f"{name}-viewer", cpu=VIEWER_CPU)
    v.wait_first()
    time.sleep(0.3)
    c0, t0 = cpu_s(s.proc.pid), time.monotonic()
    m0 = metrics(s.port) if s.kind == "node" else None
    time.sleep(args.c["cpu_s"])
    c1, t1 = cpu_s(s.proc.pid), time.monotonic()
    m1 = metrics(s.port) if s.kind == "node" else None
    res["cpu_core_frac_1viewer"] = round((c1 - c0) / (t1 - t0), 4)
    res["cpu_window_s"] = round(t1 - t0, 2)
    res.update({f"{k}_kib_1viewer": v_ for k, v_ in mem_kib(s.proc.pid).items()})
    r = v.result()
    res["viewer_fps"] = r.get("fps_arrivals", r.get("fps"))
    res["viewer_error"] = r.get("error")
    if m1:
        res["pacing_unloaded"] = hist_percentiles(m0, m1)
        res["sender_fps"] = round((m1["sutantra_frames_sent_total"] - m0["sutantra_frames_sent_total"]) / (m1["_t"] - m0["_t"]), 3)


def viewer_steps(args, s: Sender, name: str, res: dict) -> None:
    cv = CountViewers(s.url, f"{name}-count", cpu=VIEWER_CPU)
    steps = []
    have = 0
    try:
        for n in args.c["viewer_steps"]:
            a = cv.cmd(f"add {n - have}")
            have = n
            if a.get("errors"):
                log(f"{name}: viewer errors at {n}: {a['errors']}")
            time.sleep(1.0)
            c0, t0 = cpu_s(s.proc.pid), time.monotonic()
            m = cv.cmd(f"measure {args.c['mem_s']}")
            c1, t1 = cpu_s(s.proc.pid), time.monotonic()
            mem = mem_kib(s.proc.pid)
            steps.append({"viewers": n, "connected": m["viewers"], "cpu_core_frac": round((c1 - c0) / (t1 - t0), 4),
                          "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"], "anon_kib": mem.get("RssAnon"),
                          "file_kib": mem.get("RssFile"), "min_fps": m["min_fps"], "payload_kbps": m.get("mean_payload_kbps"),
                          "mean_fps": round(statistics.mean(m["fps"]), 2) if m["fps"] else None,
                          "loadgen_cpu_frac": m["loadgen_cpu_frac"]})
            log(f"{name}: {steps[-1]}")
    finally:
        cv.close()
    res["steps"] = steps
    if len(steps) >= 2:
        a, b = steps[0], steps[-1]
        dn = b["viewers"] - a["viewers"]
        res["per_viewer_cpu_pct_core"] = round((b["cpu_core_frac"] - a["cpu_core_frac"]) / dn * 100, 3)
        res["per_viewer_rss_kib"] = round((b["rss_kib"] - a["rss_kib"]) / dn, 1)


# The encode phase pins the senders that serve viewers (node, aiortc) to one CPU and their
# viewers to the other: a decoding viewer sharing the sender's cores taxes the senders it runs
# beside and not the one without viewers (ffmpeg encoding to null). Unpinned, the node measured
# 22.9 % of a core at 720p; pinned with its viewer on the other CPU 18.1-18.9 %.
SENDER_CPU, VIEWER_CPU = "0", "1"


def phase_encode(args, out: dict) -> None:
    for label, w, h, kbps in SIZES:
        y4m = make_y4m(args, label, w, h)
        fig: dict = {}
        out.setdefault("encode", {})[label] = fig
        # the node
        log(f"encode {label}: node")
        s = start_node(args, f"y4m:{y4m}", w, h, kbps, f"node-{label}", cpu=SENDER_CPU)
        try:
            wait_healthz(s.port, s.proc)
            mem = mem_kib(s.proc.pid)
            node = {"idle_rss_kib": mem["VmRSS"]}
            measure_sender_cpu(args, s, f"node-{label}", node)
            viewer_steps(args, s, f"node-{label}", node)
            node["final_hwm_kib"] = mem_kib(s.proc.pid)["VmHWM"]
        finally:
            stop(s.proc)
        fig["node"] = node
        # ffmpeg's libvpx with the node's settings
        log(f"encode {label}: ffmpeg")
        secs = args.c["cpu_s"]
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
               "-i", y4m, "-t", str(secs), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", str(args.cpu_used),
               "-b:v", f"{kbps}k", "-minrate", f"{kbps}k", "-maxrate", f"{kbps}k", "-threads", "1",
               "-g", "300", "-lag-in-frames", "0", "-f", "null", "-"]
        fig["ffmpeg_cmd"] = " ".join(cmd)
        t0 = time.monotonic()
        # Not pinned: it has no viewer to keep apart, and pinned its threads share one core
        # (a quick run measured 9.9 % / 21.5 % pinned against 8.3 % / 18.9 % free). The peer
        # runs in its best case.
        p = spawn(cmd, log_name=f"ffmpeg-{label}")
        _, status, ru = os.wait4(p.pid, 0)
        CHILDREN.remove(p)
        wall = time.monotonic() - t0
        if status != 0:
            raise Fail(f"ffmpeg failed ({status}):\n{log_tail(p)}")
        fig["ffmpeg"] = {"cpu_core_frac": round((ru.ru_utime + ru.ru_stime) / wall, 4), "wall_s": round(wall, 2),
                         "maxrss_kib": ru.ru_maxrss}
        # aiortc
        log(f"encode {label}: aiortc")
        s = start_peer(y4m, kbps, f"aiortc-{label}", cpu=SENDER_CPU)
        try:
            wait_healthz(s.port, s.proc)
            peer: dict = {"idle_rss_kib": mem_kib(s.proc.pid)["VmRSS"]}
            measure_sender_cpu(args, s, f"aiortc-{label}", peer)
            viewer_steps(args, s, f"aiortc-{label}", peer)
            peer["final_hwm_kib"] = mem_kib(s.proc.pid)["VmHWM"]
        finally:
            stop(s.proc)
        fig["aiortc"] = peer
        n = node["cpu_core_frac_1viewer"]
        fig["node_vs_ffmpeg"] = round(n / fig["ffmpeg"]["cpu_core_frac"], 3)
        fig["node_vs_aiortc"] = round(n / peer["cpu_core_frac_1viewer"], 3)
        log(f"encode {label}: node {n:.3f} core, ffmpeg {fig['ffmpeg']['cpu_core_frac']:.3f}, aiortc {peer['cpu_core_frac_1viewer']:.3f}")


def one_latency_run(args, kind: str, seconds: float, name: str, samples: str | None, y4m: str,
                    send_offset_ms: int = 0) -> dict:
    # The viewer starts first and imports aiortc, so its own start-up is not counted; then the
    # sender is started, and the viewer polls its /healthz (every 20 ms) and POSTs.
    port = free_port()
    v = DecodeViewer(f"http://127.0.0.1:{port}/whep", seconds, f"{name}-viewer", samples, ready=True)
    v.wait_ready()
    if kind == "node":
        s = start_node(args, "test-pattern", 640, 480, 1000, name, port=port, send_offset_ms=send_offset_ms)
    else:
        s = start_peer(y4m, 1000, name, stamp=True, port=port)
    try:
        first = v.wait_first()
        r = v.result(timeout=seconds + 60)
    finally:
        stop(s.proc)
    return {"start_to_first_frame_ms": round((first - s.spawned) * 1000, 1),
            "post_to_first_frame_ms": r.get("first_frame_ms"), "latency_ms": r.get("latency_ms"),
            "stamp_ok": r.get("stamp_ok"), "fps": r.get("fps_arrivals"), "error": r.get("error")}


def phase_latency(args, out: dict) -> None:
    y4m = make_y4m(args, "640x480", 640, 480)
    lat: dict = {}
    for kind in ("node", "aiortc"):
        log(f"latency: {kind} ({args.c['lat_s']} s)")
        runs = [one_latency_run(args, kind, args.c["lat_s"], f"lat-{kind}", os.path.join(args.results, f"latency_{kind}.csv"), y4m)]
        for i in range(args.c["ttff_trials"] - 1):
            runs.append(one_latency_run(args, kind, 1.0, f"ttff-{kind}-{i}", None, y4m))
        lat[kind] = {"window": runs[0],
                     "start_to_first_frame_ms": [r["start_to_first_frame_ms"] for r in runs],
                     "post_to_first_frame_ms": [r["post_to_first_frame_ms"] for r in runs]}
        log(f"latency {kind}: {runs[0]['latency_ms']}, ttff {lat[kind]['start_to_first_frame_ms']} / {lat[kind]['post_to_first_frame_ms']}")
    # What the send hold of the pacing soak costs in latency (a third of the window).
    secs = max(5.0, args.c["lat_s"] / 3)
    log(f"latency: node with send_offset_ms = {args.send_offset_ms} ({secs:.0f} s)")
    r = one_latency_run(args, "node", secs, "lat-node-hold", os.path.join(args.results, "latency_node_hold.csv"),
                        y4m, send_offset_ms=args.send_offset_ms)
    lat["node_hold"] = {"window": r, "send_offset_ms": args.send_offset_ms, "seconds": secs}
    log(f"latency node with hold: {r['latency_ms']}")
    out["latency"] = lat


def hist_counts(m0: dict, m1: dict, base: str) -> list:
    """Cumulative bucket counts [(le µs, count)] of Prometheus histogram `base` between two
    /metrics samples (`metrics()` keeps its lines as they are: base_bucket{le="250"})."""
    def buckets(m):
        out = []
        for k, v in m.items():
            mm = re.match(re.escape(base) + r'_bucket\{le="([^"]+)"\}$', k)
            if mm:
                out.append((float("inf") if mm.group(1) == "+Inf" else float(mm.group(1)), v))
        return sorted(out)
    b0 = dict(buckets(m0))
    return [(le, c - b0.get(le, 0.0)) for le, c in buckets(m1)]


def hist_summary(cum: list, total_us: float) -> dict:
    """p50/p95/p99 (bucket upper bounds, µs), mean and count of cumulative buckets."""
    if not cum or cum[-1][1] <= 0:
        return {"count": 0}
    total = cum[-1][1]
    q = lambda p: next(le for le, c in cum if c >= p * total)
    return {"count": int(total), "p50_le_us": q(0.5), "p95_le_us": q(0.95), "p99_le_us": q(0.99),
            "mean_us": round(total_us / total, 1)}


def nearest_rank(values: list, q: float):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v), max(1, int(-(-q * len(v) // 100)))) - 1]


def pooled(rows: list, key) -> dict:
    """p50/p95/p99/mean (ms, nearest rank) of `key(row)` over CSV rows, empty cells left out."""
    vals = []
    for r in rows:
        try:
            v = key(r)
        except (ValueError, KeyError):
            continue
        if v == v:  # not NaN
            vals.append(v)
    if not vals:
        return {"count": 0}
    return {"count": len(vals), "p50": round(nearest_rank(vals, 50), 2), "p95": round(nearest_rank(vals, 95), 2),
            "p99": round(nearest_rank(vals, 99), 2), "mean": round(statistics.mean(vals), 2)}


def browser_view(args, url: str, seconds: float, name: str, samples: str) -> dict:
    """bench/browser_latency.mjs (headless Chromium: the latency stamp of every frame, on screen
    by a screencast and at requestVideoFrameCallback) against `url`; its JSON."""
    cmd = ["node", os.path.join(HERE, "browser_latency.mjs"), "--url", url, "--seconds", str(seconds),
           "--warmup", "3", "--samples", samples, "--timeout", "60"]
    p = spawn(cmd, log_name=name, stdout=subprocess.PIPE)
    try:
        out, _ = p.communicate(timeout=seconds + 180)
    finally:
        stop(p)
    lines = [l for l in out.decode().splitlines() if l.startswith("{")]
    if not lines:
        err = open(os.path.join(TMP, name + ".err"), errors="replace").read()[-800:]
        raise Fail(f"{name}: no result (exit {p.returncode}): {err}")
    r = json.loads(lines[-1])
    if r.get("error"):
        raise Fail(f"{name}: {r['error']} {r.get('console')}")
    return r


# The senders of the browser phase: key, kind, extra node configuration.
BROWSER_SENDERS = (("node", "node", ""), ("aiortc", "aiortc", None),
                   ("node_no_ext", "node", "[webrtc]\nplayout_delay = false\n"))


def phase_browser(args, out: dict) -> None:
    """Glass-to-glass latency in Chromium (issue 17): a headless Chromium viewer
    (bench/browser_latency.mjs) of the node (playout-delay extension on, the default [0, 0]), of
    aiortc's sender, and of the node with `webrtc.playout_delay = false`, 640x480 1 Mbit/s, in
    rounds: each round runs one session per sender, each with a fresh browser (so a new phase
    between the sender's 30 fps and the browser's 60 Hz frame clock), and the figures pool the
    rounds' frames. Raw per-frame samples in browser_<sender>_<round>.csv. The node's own share
    (capture -> last packet handed to the viewers' queues) is its
    sutantra_frame_capture_to_send_us histogram over the same windows."""
    if not shutil.which("node") or not os.path.exists(os.path.join(ROOT, "tests", "e2e", "node_modules", "playwright-core")):
        raise Fail("Node.js and tests/e2e/node_modules/playwright-core are needed: run scripts/setup.sh")
    y4m = make_y4m(args, "640x480", 640, 480)
    rounds = max(1, args.c["browser_rounds"])
    secs = max(2.0, args.c["browser_s"] / rounds)
    res: dict = {"seconds": args.c["browser_s"], "rounds": rounds, "session_s": secs}
    runs: dict = {k: [] for k, _, _ in BROWSER_SENDERS}
    shares: dict = {k: [[], 0.0] for k, _, _ in BROWSER_SENDERS}
    for rnd in range(1, rounds + 1):
        for key, kind, toml in BROWSER_SENDERS:
            log(f"browser round {rnd}/{rounds}: Chromium viewer of {key} ({secs:.0f} s)")
            if kind == "node":
                s = start_node(args, "test-pattern", 640, 480, 1000, f"browser-{key}-{rnd}", extra_toml=toml)
            else:
                s = start_peer(y4m, 1000, f"browser-{key}-{rnd}", stamp=True)
            csv = os.path.join(args.results, f"browser_{key}_{rnd}.csv")
            try:
                wait_healthz(s.port, s.proc)
                m0 = metrics(s.port) if kind == "node" else None
                r = browser_view(args, s.url, secs, f"browser-{key}-{rnd}-viewer", csv)
                if m0 is not None:
                    m1 = metrics(s.port)
                    cum = hist_counts(m0, m1, "sutantra_frame_capture_to_send_us")
                    acc = shares[key]
                    acc[0] = cum if not acc[0] else [(le, c + c0) for (le, c), (_, c0) in zip(cum, acc[0])]
                    acc[1] += m1.get("sutantra_frame_capture_to_send_us_sum", 0) - m0.get("sutantra_frame_capture_to_send_us_sum", 0)
            finally:
                stop(s.proc)
            r["csv"] = os.path.relpath(csv, args.results)
            runs[key].append(r)
            log(f"browser {key} round {rnd}: on screen p50 {(r.get('latency_ms') or {}).get('p50')} ms, "
                f"received -> on screen p50 {(r.get('receive_to_screen_ms') or {}).get('p50')} ms, "
                f"jitter buffer {r.get('stats', {}).get('jitter_buffer_delay_ms')} ms/frame, "
                f"{r.get('stats', {}).get('fps_decoded')} fps, extmap answer {r.get('answer_playout_delay_id')}")
    for key, _, _ in BROWSER_SENDERS:
        rows = []
        for r in runs[key]:
            with open(os.path.join(args.results, r["csv"])) as f:
                head = f.readline().strip().split(",")
                rows += [dict(zip(head, l.strip().split(","))) for l in f if l.strip()]
        num = lambda r, k: float(r[k]) if r.get(k) else float("nan")
        mean = lambda xs: round(statistics.mean(xs), 2) if xs else None
        st = [r.get("stats", {}) for r in runs[key]]
        res[key] = {
            "frames": len(rows),
            "on_screen": sum(1 for r in rows if r.get("swap_ms")),
            "latency_ms": pooled(rows, lambda r: num(r, "stamp_to_swap_ms")),
            "present_latency_ms": pooled(rows, lambda r: num(r, "stamp_to_present_ms")),
            "expected_display_latency_ms": pooled(rows, lambda r: num(r, "stamp_to_expected_display_ms")),
            "stamp_to_receive_ms": pooled(rows, lambda r: num(r, "stamp_to_receive_ms")),
            "receive_to_screen_ms": pooled(rows, lambda r: num(r, "swap_ms") - num(r, "receive_ms")),
            "round_p50s": [(r.get("latency_ms") or {}).get("p50") for r in runs[key]],
            "fps_decoded": mean([x["fps_decoded"] for x in st if x.get("fps_decoded") is not None]),
            "jitter_buffer_delay_ms": mean([x["jitter_buffer_delay_ms"] for x in st if x.get("jitter_buffer_delay_ms") is not None]),
            "frames_dropped": sum(x.get("frames_dropped", 0) for x in st),
            "freezes": sum(x.get("freezes", 0) for x in st),
            "answer_playout_delay_id": [r.get("answer_playout_delay_id") for r in runs[key]],
            "browser": runs[key][0].get("browser") if runs[key] else None,
            "sessions": runs[key],
        }
        if shares[key][0]:
            res[key]["node_share"] = hist_summary(shares[key][0], shares[key][1])
    n, a, x = (res[k]["latency_ms"] for k in ("node", "aiortc", "node_no_ext"))
    if n.get("p50") and a.get("p50"):
        res["ratio_p50"] = round(n["p50"] / a["p50"], 3)
    if x.get("p50") and a.get("p50"):
        res["ratio_p50_no_ext"] = round(x["p50"] / a["p50"], 3)
    log(f"browser: on screen p50 node {n.get('p50')} / aiortc {a.get('p50')} / node without the extension "
        f"{x.get('p50')} ms; node/aiortc {res.get('ratio_p50')} (without {res.get('ratio_p50_no_ext')}); "
        f"node share {res['node'].get('node_share')}")
    out["browser"] = res


def phase_pacing(args, out: dict) -> None:
    soak, warm = args.c["soak_s"], args.c["soak_warmup_s"]
    log(f"pacing: {soak} s soak, node test-pattern 640x480, send_offset_ms {args.send_offset_ms}, "
        "one counting viewer, stress-ng --cpu 1")
    stress = spawn(["stress-ng", "--cpu", "1", "--timeout", str(int(soak + warm + 30))], log_name="stress-ng")
    s = start_node(args, "test-pattern", 640, 480, 1000, "node-soak", send_offset_ms=args.send_offset_ms)
    cv = None
    try:
        wait_healthz(s.port, s.proc)
        cv = CountViewers(s.url, "soak-count")
        cv.cmd("add 1")
        time.sleep(warm)
        m0 = metrics(s.port)
        rows = []
        t_start = time.monotonic()
        while time.monotonic() - t_start < soak:
            mem = mem_kib(s.proc.pid)
            rows.append((round(time.monotonic() - t_start, 1), mem["VmRSS"], mem["VmHWM"], round(cpu_s(s.proc.pid), 2)))
            time.sleep(min(5.0, max(0.0, soak - (time.monotonic() - t_start))))
        m1 = metrics(s.port)
        mem = mem_kib(s.proc.pid)
        rows.append((round(time.monotonic() - t_start, 1), mem["VmRSS"], mem["VmHWM"], round(cpu_s(s.proc.pid), 2)))
        vm = cv.cmd("measure 2")
    finally:
        if cv:
            cv.close()
        stop(s.proc)
        stop(stress)
    with open(os.path.join(args.results, "soak_memory.csv"), "w") as f:
        f.write("t_s,rss_kib,hwm_kib,cpu_s\n")
        for r in rows:
            f.write(",".join(map(str, r)) + "\n")
    dt_ = m1["_t"] - m0["_t"]
    fps = (m1["sutantra_frames_sent_total"] - m0["sutantra_frames_sent_total"]) / dt_
    # linear fit of RSS over the window (KiB per minute)
    xs, ys = [r[0] for r in rows], [r[1] for r in rows]
    slope = 0.0
    if len(xs) > 2:
        mx, my = statistics.mean(xs), statistics.mean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60 if den else 0.0
    half = [r for r in rows if r[0] >= rows[-1][0] / 2]
    growth_2nd = half[-1][1] - half[0][1] if len(half) > 1 else None
    out["pacing"] = {"seconds": round(dt_, 1), "send_offset_ms": args.send_offset_ms, "rss_growth_second_half_kib": growth_2nd,
                     "second_half_s": round(half[-1][0] - half[0][0], 1) if len(half) > 1 else None, "fps": round(fps, 3), "lateness": hist_percentiles(m0, m1),
                     "capture_lateness": hist_percentiles(m0, m1, "capture"),
                     "skipped": m1.get("sutantra_pacer_skipped_total", 0) - m0.get("sutantra_pacer_skipped_total", 0),
                     "pool_dropped": m1.get("sutantra_frame_pool_dropped_total", 0) - m0.get("sutantra_frame_pool_dropped_total", 0),
                     "rss_start_kib": ys[0], "rss_end_kib": ys[-1], "rss_max_kib": max(ys), "hwm_end_kib": rows[-1][2],
                     "rss_slope_kib_per_min": round(slope, 1), "viewer_fps": vm.get("min_fps")}
    log(f"pacing: {out['pacing']}")


def phase_capacity(args, out: dict) -> None:
    label, w, h, kbps = SIZES[0]
    y4m = make_y4m(args, label, w, h)
    log("capacity: node on CPU 0 (taskset), counting viewers on CPU 1")
    s = start_node(args, f"y4m:{y4m}", w, h, kbps, "node-cap", cpu="0")
    cv = None
    steps = []
    verdict = None
    try:
        wait_healthz(s.port, s.proc)
        cv = CountViewers(s.url, "cap-count", cpu="1")
        n = 0
        while n < args.c["cap_max"]:
            add = args.c["cap_step"] if n else max(1, args.c["cap_step"])
            a = cv.cmd(f"add {add}")
            n += add
            time.sleep(1.0)
            c0, t0, u0, k0 = cpu_s(s.proc.pid), time.monotonic(), udp_errors(), metrics(s.port)
            m = cv.cmd(f"measure {args.c['cap_s']}")
            c1, t1, u1, k1 = cpu_s(s.proc.pid), time.monotonic(), udp_errors(), metrics(s.port)
            step = {"viewers": n, "connected": m["viewers"], "connect_errors": a.get("errors"),
                    "node_fps": round((k1["sutantra_frames_sent_total"] - k0["sutantra_frames_sent_total"]) / (k1["_t"] - k0["_t"]), 2),
                    "node_queue_drops": k1.get("sutantra_viewer_packets_dropped_total", 0) - k0.get("sutantra_viewer_packets_dropped_total", 0),
                    "udp_rcvbuf_errors": {k: u1[k] - u0.get(k, 0) for k in u1},
                    "min_fps": m["min_fps"], "mean_fps": round(statistics.mean(m["fps"]), 2) if m["fps"] else None,
                    "node_cpu_frac": round((c1 - c0) / (t1 - t0), 3), "loadgen_cpu_frac": m["loadgen_cpu_frac"],
                    "rss_kib": mem_kib(s.proc.pid)["VmRSS"]}
            steps.append(step)
            log(f"capacity: {step}")
            if m["viewers"] < n or (m["min_fps"] is not None and m["min_fps"] < 29):
                good = [st["viewers"] for st in steps[:-1]]
                served = good[-1] if good else 0
                if (step["udp_rcvbuf_errors"]["RcvbufErrors"] > 0 and step["node_queue_drops"] == 0
                        and step["node_fps"] >= 29.5 and m["viewers"] == n):
                    # The node kept 30 fps with no queue drops, the receivers' sockets overflowed:
                    # the load generator fell behind, not the node.
                    verdict = {"served": served, "lower_bound": True,
                               "limit": f"at {n} the receivers' UDP buffers overflowed "
                                        f"({step['udp_rcvbuf_errors']['RcvbufErrors']} RcvbufErrors) while the node "
                                        f"sent {step['node_fps']} fps with no queue drops: the load generator fell behind"}
                else:
                    verdict = {"served": served, "limit": f"at {n} a viewer fell below 29 fps or failed to connect"}
                break
            if m["loadgen_cpu_frac"] > 0.9:
                verdict = {"served": n, "limit": "load generator saturated its core: lower bound", "lower_bound": True}
                break
        if verdict is None:
            verdict = {"served": n, "limit": f"stopped at the suite's cap ({args.c['cap_max']}): lower bound", "lower_bound": True}
        profile(s, n, os.path.join(args.results, "perf_capacity.txt"))
    finally:
        if cv:
            cv.close()
        stop(s.proc)
    out["capacity"] = {"steps": steps, **verdict}


def profile(s: Sender, viewers: int, path: str, seconds: int = 5) -> None:
    """Where the node's CPU goes with `viewers` viewers: `perf record -g` for a few seconds, the
    report by thread and library (the release binary has no symbols; libvpx, the kernel's UDP
    path and the node's own code are told apart). Skipped without perf or permission."""
    if not shutil.which("perf") or os.environ.get("BENCH_PERF", "1") == "0":
        return
    data = os.path.join(TMP, "perf.data")
    r = subprocess.run(["perf", "record", "-F", "499", "-g", "-o", data, "-p", str(s.proc.pid), "--", "sleep", str(seconds)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"perf record failed (skipped): {r.stderr.strip()[-300:]}")
        return
    rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none", "--sort", "comm,dso"],
                         capture_output=True, text=True).stdout
    lines = [l for l in rep.splitlines() if l.strip() and not l.startswith("#")][:30]
    with open(path, "w") as f:
        f.write(f"perf record -F 499 -g -p <node> -- sleep {seconds}; {viewers} counting viewers, 640x480 1 Mbit/s\n")
        f.write("perf report --stdio --no-children --sort comm,dso (top 30)\n\n" + "\n".join(lines) + "\n")
    log(f"perf profile of the node at {viewers} viewers: {path}")


def cargo_bench(args, bench: str, extra: list[str], env: dict | None = None) -> str:
    # The light client's bench lives in the chain crate, the media benches in the core.
    crate = "sutantra-chain" if bench == "verify" else "sutantra-core"  # media, still: the core
    cmd = ["cargo", "bench", "-q", "-p", crate, "--bench", bench, "--"] + extra
    log("running " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise Fail(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def churn_run(s: Sender, name: str, sessions: int, settle: int, path: str) -> dict:
    """bench/churn.py against a sender (one steady counting viewer, then `sessions` sessions, a
    third aborted, then RSS every second for `settle` s); its whole output kept at `path`."""
    wait_healthz(s.port, s.proc)
    cmd = [PY, os.path.join(HERE, "churn.py"), "--url", s.url, "--pid", str(s.proc.pid),
           "--sessions", str(sessions), "--settle", str(settle)]
    log(f"churn {name}: {sessions} sessions, {settle} s settle")
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=sessions * 2 + settle + 300)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise Fail(f"churn.py against {name} printed no result (exit {r.returncode}):\n{r.stderr[-1500:]}")
    res = json.loads(lines[-1])
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return res


def phase_churn(args, out: dict) -> None:
    """Memory that comes back (issue 17): the node's RSS after a churn of viewer sessions, and
    aiortc's sender under the same churn in the same run."""
    n, settle = args.c["churn_sessions"], args.c["churn_settle_s"]
    res: dict = {"sessions": n, "settle_s": settle}
    s = start_node(args, "test-pattern", 640, 480, 1000, "churn-node")
    try:
        res["node"] = churn_run(s, "node", n, settle, os.path.join(args.results, "churn_node.json"))
    finally:
        stop(s.proc)
    a = start_peer(make_y4m(args, "640x480", 640, 480), 1000, "churn-aiortc")
    try:
        res["aiortc"] = churn_run(a, "aiortc", n, settle, os.path.join(args.results, "churn_aiortc.json"))
    except (Fail, subprocess.TimeoutExpired) as e:
        res["aiortc"] = {"error": str(e)[:500]}
    finally:
        stop(a.proc)
    out["churn"] = res


def phase_whip(args, out: dict) -> None:
    """WHIP POST -> first frame decoded at an aiortc endpoint, the node and an aiortc publisher
    in the same run (bench/whip_first_frame.py; its samples and printout kept)."""
    raw = os.path.join(args.results, "whip_first_frame.json")
    cmd = [PY, os.path.join(HERE, "whip_first_frame.py"), "--binary", f"node={args.binary}",
           "--runs", str(args.c["whip_runs"]), "--no-whep", "--json", raw]
    log("running " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    with open(os.path.join(args.results, "whip_first_frame.txt"), "w") as f:
        f.write(r.stdout)
    if r.returncode != 0 or not os.path.exists(raw):
        raise Fail(f"whip_first_frame.py failed (exit {r.returncode}):\n{r.stderr[-1500:]}")
    with open(raw) as f:
        samples = json.load(f)["samples_ms"]
    out["whip"] = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
                   for k, v in samples.items()}


def phase_still(args, out: dict) -> None:
    """Still scenes (issue 17): the node's encoder on a still and a moving scene, today's
    static threshold (1) against the default, and ffmpeg's libvpx on the same frames."""
    text = cargo_bench(args, "still", ["--quick", "--frames", str(args.c["still_frames"]),
                                       "--reps", str(args.c["still_reps"])])
    with open(os.path.join(args.results, "still.txt"), "w") as f:
        f.write(text)
    node, peer = {}, {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 6 or cells[0] in ("scene",) or cells[0].startswith("---"):
            continue
        try:
            if len(cells) >= 10:  # scene | tuning | CPU ms | runs | vs today | vs moving | kbit/s | PSNR | dPSNR | dropped
                node[(cells[0], cells[1].split(":")[0])] = {"cpu_ms": float(cells[2]), "kbps": float(cells[6]),
                                                            "psnr_db": float(cells[7].split("/")[0])}
            else:  # scene | encoder | CPU ms | runs | kbit/s | PSNR
                peer[(cells[0], cells[1])] = {"cpu_ms": float(cells[2]), "kbps": float(cells[4]),
                                              "psnr_db": float(cells[5])}
        except ValueError:
            continue
    out["still"] = {"node": {f"{k[0]}|{k[1]}": v for k, v in node.items()},
                    "ffmpeg": {f"{k[0]}|{k[1]}": v for k, v in peer.items()}}


def phase_verify(args, out: dict) -> None:
    text = cargo_bench(args, "verify", [args.c["verify_budget"]])
    out["verify"] = {"markdown": "\n".join(l for l in text.splitlines() if l.startswith("|"))}


def phase_media(args, out: dict) -> None:
    env = {f"BENCH_Y4M_{w}x{h}": make_y4m(args, label, w, h) for label, w, h, _ in SIZES}
    text = cargo_bench(args, "media", [str(args.c["media_frames"])], env)
    rows = [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    out["media"] = rows


# libvpx speeds of the sweep: adaptive 8 (the node's default before issue 7), the fixed speeds.
SPEEDS = [8, -4, -6, -8, -10, -12, -16]


def phase_speed(args, out: dict) -> None:
    """Encoder speed against CPU per frame and quality: the in-process media bench at each speed
    (the node's own encoder on the same frames), with the PSNR of what it decodes to."""
    env = {f"BENCH_Y4M_{w}x{h}": make_y4m(args, label, w, h) for label, w, h, _ in SIZES}
    rows = []
    for sp in SPEEDS:
        text = cargo_bench(args, "media", [str(args.c["speed_frames"])], {**env, "BENCH_CPU_USED": str(sp)})
        rows += [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    out["speed"] = rows


def phase_size(args, out: dict) -> None:
    path = os.path.join(ROOT, "target", "aarch64-unknown-linux-gnu", "release", "sutantra")
    if not os.path.exists(path):
        out["size"] = {"missing": path, "how": "./cross/build.sh aarch64-unknown-linux-gnu"}
        return
    strip = shutil.which("aarch64-linux-gnu-strip")
    copy = os.path.join(TMP, "sutantra-aarch64")
    shutil.copy(path, copy)
    if strip:
        subprocess.run([strip, copy], check=True)
    out["size"] = {"path": os.path.relpath(path, ROOT), "bytes": os.path.getsize(copy), "stripped": bool(strip),
                   "built": dt.datetime.fromtimestamp(os.path.getmtime(path), dt.timezone.utc).isoformat(timespec="minutes")}


# --- environment and the table ----------------------------------------------------------------------


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return "?"


def environment(args) -> dict:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    aiortc_v = sh([PY, "-c", "import aiortc, av; print(aiortc.__version__, 'av', av.__version__)"])
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "mem_total_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20,
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "rustc": sh(["rustc", "--version"]), "libvpx": sh(["pkg-config", "--modversion", "vpx"]),
        "ffmpeg": sh(["ffmpeg", "-version"]).splitlines()[0] if shutil.which("ffmpeg") else "?",
        "aiortc": aiortc_v, "python": platform.python_version(),
        "stress-ng": sh(["stress-ng", "--version"]),
        "git": sh(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
        "command": args.command, "mode": "quick" if args.quick else "full",
    }


def fmt(x, nd=1, unit=""):
    if x is None:
        return "n/a"
    if isinstance(x, float):
        if x == float("inf"):
            return "inf"
        return f"{x:.{nd}f}{unit}"
    return f"{x}{unit}"


def mib(kib):
    return None if kib is None else kib / 1024


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def table(env: dict, out: dict, args) -> str:
    c = args.c
    L = []
    L.append(f"Run {env['date']} ({env['mode']}), `{env['command']}`, git `{env['git']}`.")
    L.append(f"Machine: {env['nproc']} x {env['cpu']}, {env['mem_total_mib']} MiB, Linux {env['kernel']}, "
             f"load average at start {' '.join(env['loadavg_at_start'])}. Versions: {env['rustc']}; libvpx "
             f"{env['libvpx']}; {env['ffmpeg']}; aiortc {env['aiortc']} (Python {env['python']}); {env['stress-ng']}.")
    L.append("")
    L.append("| figure | node | peer (same run) | ratio node/peer | goal | verdict |")
    L.append("|---|---:|---:|---:|---|---|")
    enc = out.get("encode", {})
    for label, _, _, kbps in SIZES:
        f = enc.get(label)
        if not f:
            continue
        n, ff, ai = f["node"], f["ffmpeg"], f["aiortc"]
        kb = lambda side: ({s_["viewers"]: s_ for s_ in side.get("steps", [])}.get(1) or {}).get("payload_kbps")
        L.append(f"| bitrate received (VP8 payload, 1 viewer) {label} | {fmt(kb(n), 0)} kbit/s | aiortc {fmt(kb(ai), 0)} kbit/s | "
                 f"{fmt(kb(n) / kb(ai), 2) if kb(n) and kb(ai) else 'n/a'} | same as configured | - |")
        L.append(f"| CPU per stream {label}@30 {kbps} kbit/s, 1 viewer ({c['cpu_s']} s; % of one core) | "
                 f"{fmt(n['cpu_core_frac_1viewer'] * 100)} % | ffmpeg libvpx {fmt(ff['cpu_core_frac'] * 100)} % | "
                 f"{fmt(f['node_vs_ffmpeg'], 2)} | <= 1.1 | {verdict(f['node_vs_ffmpeg'] <= 1.1)} |")
        L.append(f"| ... same, vs aiortc sender | {fmt(n['cpu_core_frac_1viewer'] * 100)} % | aiortc "
                 f"{fmt(ai['cpu_core_frac_1viewer'] * 100)} % | {fmt(f['node_vs_aiortc'], 2)} | <= 0.5 | "
                 f"{verdict(f['node_vs_aiortc'] <= 0.5)} |")
    for label, _, _, _ in SIZES:
        f = enc.get(label)
        if f:
            L.append(f"| RSS {label}, no viewer (encoder running) | {fmt(mib(f['node']['idle_rss_kib']))} MiB | aiortc "
                     f"{fmt(mib(f['aiortc']['idle_rss_kib']))} MiB (not sending) | - | published | - |")
    for label, _, _, _ in SIZES:
        f = enc.get(label)
        if not f:
            continue
        n, ai = f["node"], f["aiortc"]
        ns, as_ = {s["viewers"]: s for s in n.get("steps", [])}, {s["viewers"]: s for s in ai.get("steps", [])}
        for v in c["viewer_steps"]:
            if v not in ns:
                continue
            goal, ok = ("<= 24 MiB", mib(ns[v]["rss_kib"]) <= 24) if (v == 1 and label == "640x480") else ("published", None)
            a = as_.get(v, {})
            L.append(f"| RSS {label}, {v} viewer(s), steady (peak VmHWM; of it anonymous) | {fmt(mib(ns[v]['rss_kib']))} MiB "
                     f"({fmt(mib(ns[v]['hwm_kib']))}; anon {fmt(mib(ns[v].get('anon_kib')))}) | aiortc {fmt(mib(a.get('rss_kib')))} MiB ({fmt(mib(a.get('hwm_kib')))}), "
                     f"min fps {fmt(a.get('min_fps'))} | {fmt(ns[v]['rss_kib'] / a['rss_kib'], 2) if a.get('rss_kib') else 'n/a'} | "
                     f"{goal} | {verdict(ok)} |")
    for label, _, _, _ in SIZES:
        f = enc.get(label)
        if not f or "per_viewer_cpu_pct_core" not in f["node"]:
            continue
        n = f["node"]
        steps = n["steps"]
        L.append(f"| cost per extra viewer {label} ({steps[0]['viewers']} -> {steps[-1]['viewers']}) | "
                 f"{fmt(n['per_viewer_cpu_pct_core'], 2)} % core, {fmt(n['per_viewer_rss_kib'], 0)} KiB | aiortc "
                 f"{fmt(f['aiortc'].get('per_viewer_cpu_pct_core'), 2)} % core, {fmt(f['aiortc'].get('per_viewer_rss_kib'), 0)} KiB | "
                 f"- | <= 2 %, <= 512 KiB | {verdict(n['per_viewer_cpu_pct_core'] <= 2 and n['per_viewer_rss_kib'] <= 512)} |")
    lat = out.get("latency")
    if lat:
        n, a = lat["node"]["window"]["latency_ms"] or {}, lat["aiortc"]["window"]["latency_ms"] or {}
        ok = None if n.get("p50") is None else (n["p50"] <= 40 and (n.get("p99") or 1e9) <= 80)
        L.append(f"| glass-to-glass latency 640x480, p50 / p95 / p99 ({c['lat_s']} s, {n.get('count')} frames) | "
                 f"{fmt(n.get('p50'))} / {fmt(n.get('p95'))} / {fmt(n.get('p99'))} ms | aiortc {fmt(a.get('p50'))} / "
                 f"{fmt(a.get('p95'))} / {fmt(a.get('p99'))} ms | {fmt(n['p50'] / a['p50'], 2) if n.get('p50') and a.get('p50') else 'n/a'} (p50) | "
                 f"p50 <= 40, p99 <= 80 | {verdict(ok)} |")
        hold = lat.get("node_hold")
        if hold:
            h = hold["window"]["latency_ms"] or {}
            L.append(f"| glass-to-glass latency, node with the pacing soak's send hold (`send_offset_ms = {hold['send_offset_ms']}`; "
                     f"{hold['seconds']:.0f} s, {h.get('count')} frames) | {fmt(h.get('p50'))} / {fmt(h.get('p95'))} / "
                     f"{fmt(h.get('p99'))} ms | - | - | (the cost of even pacing) | - |")
        ns, as_ = lat["node"]["start_to_first_frame_ms"], lat["aiortc"]["start_to_first_frame_ms"]
        L.append(f"| time to first frame: process start -> first decoded frame (median of {len(ns)}) | "
                 f"{fmt(statistics.median(ns), 0)} ms | aiortc {fmt(statistics.median(as_), 0)} ms | "
                 f"{fmt(statistics.median(ns) / statistics.median(as_), 2)} | <= 1000 ms | {verdict(statistics.median(ns) <= 1000)} |")
        np_, ap = lat["node"]["post_to_first_frame_ms"], lat["aiortc"]["post_to_first_frame_ms"]
        L.append(f"| time to first frame: WHEP POST -> first decoded frame (median of {len(np_)}) | "
                 f"{fmt(statistics.median(np_), 0)} ms | aiortc {fmt(statistics.median(ap), 0)} ms | "
                 f"{fmt(statistics.median(np_) / statistics.median(ap), 2)} | <= 300 ms | {verdict(statistics.median(np_) <= 300)} |")
    br = out.get("browser")
    if br:
        L += browser_rows(br)
    p = out.get("pacing")
    if p:
        lt = p["lateness"]
        jit = (lt["p99_le_us"] - lt["p50_le_us"]) / 1000 if lt.get("count") else None
        held = p.get("send_offset_ms", 0)
        what = (f"frame handed to viewers vs deadline + {held} ms (`send_offset_ms = {held}`)" if held
                else "frame handed to viewers vs deadline")
        L.append(f"| frame pacing, {what}, other core loaded ({p['seconds']:.0f} s): p50 / p99 / max "
                 f"(bucket bounds) | {fmt(lt.get('p50_le_us', 0) / 1000, 2)} / {fmt(lt.get('p99_le_us', 0) / 1000, 2)} / "
                 f"{fmt(lt.get('max_le_us', 0) / 1000, 2)} ms (p99 - p50 {fmt(jit, 2)} ms) | - | - | p99 <= 2 ms | "
                 f"{verdict(lt['p99_le_us'] <= 2000) if lt.get('count') else 'n/a'} (p99-p50: {verdict(jit <= 2) if jit is not None else 'n/a'}) |")
        cl = p.get("capture_lateness") or {}
        if cl.get("count"):
            L.append(f"| frame clock's own error, frame taken vs deadline, other core loaded: p50 / p99 / max (bucket bounds) | {fmt(cl['p50_le_us'] / 1000, 2)} / {fmt(cl['p99_le_us'] / 1000, 2)} / "
                     f"{fmt(cl['max_le_us'] / 1000, 2)} ms | - | - | p99 <= 2 ms | {verdict(cl['p99_le_us'] <= 2000)} |")
        L.append(f"| frame rate sent over the soak | {p['fps']:.3f} fps (skipped ticks {p['skipped']:.0f}) | - | - | 30.00 +- 0.05 | "
                 f"{verdict(abs(p['fps'] - 30) <= 0.05)} |")
        g2 = p.get("rss_growth_second_half_kib")
        L.append(f"| memory over the soak ({p['seconds']:.0f} s, 1 viewer; RSS every 5 s) | RSS {fmt(mib(p['rss_start_kib']), 2)} -> "
                 f"{fmt(mib(p['rss_end_kib']), 2)} MiB (fit {p['rss_slope_kib_per_min']} KiB/min); second half "
                 f"({fmt(p.get('second_half_s'), 0)} s): {fmt(g2)} KiB | - | - | no growth (<= 256 KiB in the second half) | "
                 f"{verdict(g2 <= 256) if g2 is not None else 'n/a'} |")
    for label, _, _, _ in SIZES:
        pu = (enc.get(label) or {}).get("node", {}).get("pacing_unloaded")
        if pu and pu.get("count"):
            L.append(f"| frame pacing {label}, default (no hold: sent when encoded), y4m, 1 decoding viewer, no extra load ({c['cpu_s']} s): p50 / p99 / max | "
                     f"{fmt(pu['p50_le_us'] / 1000, 2)} / {fmt(pu['p99_le_us'] / 1000, 2)} / {fmt(pu['max_le_us'] / 1000, 2)} ms "
                     f"(p99 - p50 {fmt((pu['p99_le_us'] - pu['p50_le_us']) / 1000, 2)} ms), {fmt(enc[label]['node'].get('sender_fps'), 3)} fps | - | - | "
                     f"p99 <= 2 ms | {verdict(pu['p99_le_us'] <= 2000)} |")
    cap = out.get("capacity")
    if cap:
        served = f"{'>= ' if cap.get('lower_bound') else ''}{cap['served']}"
        last = cap["steps"][-1] if cap["steps"] else {}
        v = "undecided (a lower bound below the goal)" if cap.get("lower_bound") and cap["served"] < 50 else verdict(cap["served"] >= 50)
        L.append(f"| viewers one core serves, 640x480 1 Mbit/s (node pinned to one CPU) | {served} | - | - | >= 50 | "
                 f"{v} ({cap['limit']}; last step: {last.get('viewers')} viewers, node "
                 f"{fmt((last.get('node_cpu_frac') or 0) * 100)} % core, load generator {fmt((last.get('loadgen_cpu_frac') or 0) * 100)} %) |")
    ch = out.get("churn")
    if ch and ch.get("node"):
        L += churn_rows(ch)
    wf = out.get("whip")
    if wf:
        for role, what in (("auto", "endpoint answers setup:active"), ("server", "endpoint answers setup:passive")):
            nd, ai = wf.get(f"whip {role} node"), wf.get(f"whip {role} aiortc")
            if not nd:
                continue
            L.append(f"| WHIP first frame: POST -> first frame decoded at an aiortc endpoint ({what}), median (min-max) of "
                     f"{nd['n']} | {fmt(nd['median'])} ({fmt(nd['min'])}-{fmt(nd['max'])}) ms | aiortc publisher "
                     f"{fmt((ai or {}).get('median'))} ms | {fmt(nd['median'] / ai['median'], 2) if ai else 'n/a'} | "
                     f"<= 100 ms | {verdict(nd['median'] <= 100)} |")
    st = out.get("still")
    if st and st.get("node"):
        L += still_rows(st)
    med = out.get("media")
    if med:
        for r in med:
            peer = None
            f = enc.get(r["size"])
            if f:
                peer = f["ffmpeg"]["cpu_core_frac"] / 30 * 1000  # ms of CPU per frame
            L.append(f"| in-process encode + packetize {r['size']} (`cargo bench --bench media`) | {fmt(r['encode_ms'], 2)} ms + "
                     f"{fmt(r['packetize_us'], 1)} us per frame | ffmpeg {fmt(peer, 2)} ms CPU per frame | "
                     f"{fmt(r['encode_ms'] / peer, 2) if peer else 'n/a'} | published | - |")
    sz = out.get("size")
    if sz:
        if "bytes" in sz:
            L.append(f"| aarch64 release binary, stripped (`{sz['path']}`, built {sz['built']}) | {fmt(sz['bytes'] / 2**20, 2)} MiB | - | - | "
                     f"<= 12 MiB | {verdict(sz['bytes'] <= 12 * 2**20)} |")
        else:
            L.append(f"| aarch64 release binary | not built (`{sz['how']}`) | - | - | <= 12 MiB | n/a |")
    if out.get("speed"):
        L.append("")
        L.append("Encoder speed against CPU and quality (`BENCH_CPU_USED=N cargo bench -p sutantra-core --bench media`, "
                 "the node's encoder in process on the same Y4M, CBR at the rates above; PSNR of the decoded "
                 "picture against its source, Y+U+V, mean over the frames), same run. `cpu_used` 0..16 is "
                 "libvpx's adaptive mode, -16..-1 a fixed speed; the node's default and aiortc's is -6:")
        L.append("")
        L.append("| cpu_used | " + " | ".join(f"{label} ms/frame | {label} PSNR dB" for label, *_ in SIZES) + " |")
        L.append("|---:|" + "---:|---:|" * len(SIZES))
        by = {}
        for r in out["speed"]:
            by.setdefault(r["cpu_used"], {})[r["size"]] = r
        for sp in SPEEDS:
            cells = []
            for label, *_ in SIZES:
                r = by.get(sp, {}).get(label) or {}
                cells += [fmt(r.get("encode_ms"), 2), fmt(r.get("psnr_db"), 2)]
            mark = " (default)" if sp == args.cpu_used else ""
            L.append(f"| {sp}{mark} | " + " | ".join(cells) + " |")
    if out.get("verify"):
        L.append("")
        L.append("Light-client verification (`cargo bench -p sutantra-chain --bench verify`), same run:")
        L.append("")
        L.append(out["verify"]["markdown"])
    return "\n".join(L)


def churn_rows(ch: dict) -> list[str]:
    """The table's rows of phase churn."""
    L = []
    n, a = ch["node"], ch.get("aiortc") or {}
    over = lambda r: (r["final_kib"] - r["baseline_kib"]) if r.get("final_kib") is not None else None
    kinds = n.get("kinds", {})
    back = n.get("back_within_bound_after_s")
    a_txt = (f"aiortc {fmt(mib(a.get('baseline_kib')))} -> {fmt(mib(a.get('final_kib')))} MiB (+{fmt(mib(over(a)), 2)})"
             if a.get("final_kib") is not None else f"aiortc: {a.get('error', 'n/a')[:80]}")
    ratio = fmt(over(n) / over(a), 2) if a.get("final_kib") is not None and over(a) and over(a) > 0 else "n/a"
    L.append(f"| RSS after {ch['sessions']} viewer sessions ({kinds.get('whole')} whole, {kinds.get('cut_post')} cut POSTs, "
             f"{kinds.get('abandoned')} abandoned; one steady viewer), {ch['settle_s']} s later: one viewer -> after "
             f"(over) | {fmt(mib(n['baseline_kib']))} -> {fmt(mib(n['final_kib']))} MiB (+{fmt(mib(over(n)), 2)}; peak "
             f"{fmt(mib(n.get('peak_kib')))}; back within 2 MiB after {back if back is not None else 'never'} s; steady viewer "
             f"{fmt(n.get('steady_fps_settle'))} fps) | {a_txt} | {ratio} (growth) | <= +2 MiB within 60 s | "
             f"{verdict(back is not None and back <= 60)} |")
    return L


def still_rows(st: dict) -> list[str]:
    """The table's rows of phase still."""
    L = []
    nd, ff = st["node"], st.get("ffmpeg", {})
    g = lambda scene, tuning: nd.get(f"{scene}|{tuning}") or {}
    mv_t, mv_d, sl_t, sl_d = g("moving", "today"), g("moving", "default"), g("still", "today"), g("still", "default")
    if not (mv_t and mv_d and sl_t and sl_d):
        return L
    fs = next((v for k, v in ff.items() if k.startswith("still|") and k.endswith("-static-thresh 500")), {})
    fs0 = next((v for k, v in ff.items() if k.startswith("still|") and k.endswith("-static-thresh 0")), {})
    r = sl_d["cpu_ms"] / mv_d["cpu_ms"]
    dp = sl_d["psnr_db"] - sl_t["psnr_db"]
    L.append(f"| still scene 640x480 1 Mbit/s (a still picture, a 64x64 moving block; `cargo bench --bench still`): CPU per "
             f"frame, Y PSNR, static threshold 500 (default) | {fmt(sl_d['cpu_ms'], 2)} ms, {fmt(sl_d['psnr_db'], 2)} dB "
             f"(moving scene {fmt(mv_d['cpu_ms'], 2)} ms; threshold 1 {fmt(sl_t['cpu_ms'], 2)} ms, {fmt(sl_t['psnr_db'], 2)} dB) "
             f"| ffmpeg libvpx, same frames: -static-thresh 500 {fmt(fs.get('cpu_ms'), 2)} ms, {fmt(fs.get('psnr_db'), 2)} dB; "
             f"0 {fmt(fs0.get('cpu_ms'), 2)} ms | {fmt(r, 2)} (still / moving); {fmt(sl_d['cpu_ms'] / fs['cpu_ms'], 2) if fs.get('cpu_ms') else 'n/a'} "
             f"(/ ffmpeg) | <= 0.5, PSNR within 0.5 dB ({dp:+.2f}) | {verdict(r <= 0.5 and dp >= -0.5)} |")
    L.append(f"| moving scene, static threshold 500 against 1 (no worse) | {fmt(mv_d['cpu_ms'], 2)} ms, {fmt(mv_d['psnr_db'], 2)} dB | "
             f"threshold 1: {fmt(mv_t['cpu_ms'], 2)} ms, {fmt(mv_t['psnr_db'], 2)} dB | {fmt(mv_d['cpu_ms'] / mv_t['cpu_ms'], 2)} | "
             f"<= 1.05, PSNR within 0.1 dB | {verdict(mv_d['cpu_ms'] / mv_t['cpu_ms'] <= 1.05 and mv_d['psnr_db'] - mv_t['psnr_db'] >= -0.1)} |")
    return L


def browser_rows(br: dict) -> list[str]:
    """The table's Chromium rows (phase browser)."""
    L = []
    n, a, x = br.get("node", {}), br.get("aiortc", {}), br.get("node_no_ext", {})
    three = lambda d: f"{fmt(d.get('p50'))} / {fmt(d.get('p95'))} / {fmt(d.get('p99'))} ms"
    g = lambda r, k: (r.get(k) or {}).get("p50")
    ratio = lambda u, v: fmt(u / v, 2) if u and v else "n/a"
    nl, al, xl = (r.get("latency_ms") or {} for r in (n, a, x))
    r50 = br.get("ratio_p50")
    L.append(f"| Chromium glass-to-glass 640x480 (stamp -> frame on screen: the screencast's swap time), p50 / p95 / p99 "
             f"({br['rounds']} x {br['session_s']:.0f} s, {nl.get('count')} frames; node with playout delay [0, 0]) | "
             f"{three(nl)} | aiortc {three(al)} | {fmt(r50, 2)} (p50) | <= 0.6 | {verdict(r50 <= 0.6) if r50 else 'n/a'} |")
    L.append(f"| ... node without the extension (`webrtc.playout_delay = false`) | {three(xl)} | aiortc {three(al)} | "
             f"{fmt(br.get('ratio_p50_no_ext'), 2)} (p50) | - | - |")
    L.append(f"| ... of it, Chromium's share (frame's last packet received -> on screen), p50; jitter buffer delay per frame "
             f"| {fmt(g(n, 'receive_to_screen_ms'))} ms; {fmt(n.get('jitter_buffer_delay_ms'))} ms (without the extension "
             f"{fmt(g(x, 'receive_to_screen_ms'))} ms; {fmt(x.get('jitter_buffer_delay_ms'))} ms) | aiortc "
             f"{fmt(g(a, 'receive_to_screen_ms'))} ms; {fmt(a.get('jitter_buffer_delay_ms'))} ms | "
             f"{ratio(g(n, 'receive_to_screen_ms'), g(a, 'receive_to_screen_ms'))} | - | - |")
    L.append(f"| ... of it, sender + loopback (stamp -> frame's last packet received), p50 | {fmt(g(n, 'stamp_to_receive_ms'))} ms | "
             f"aiortc {fmt(g(a, 'stamp_to_receive_ms'))} ms | {ratio(g(n, 'stamp_to_receive_ms'), g(a, 'stamp_to_receive_ms'))} | - | - |")
    sh_ = n.get("node_share") or {}
    if sh_.get("count"):
        L.append(f"| ... of that, the node's own share: capture -> last packet handed to the viewers' queues "
                 f"(`sutantra_frame_capture_to_send_us`, {sh_['count']} frames), p50 / p95 (bucket bounds), mean | "
                 f"{fmt(sh_['p50_le_us'] / 1000, 2)} / {fmt(sh_['p95_le_us'] / 1000, 2)} ms, mean {fmt(sh_['mean_us'] / 1000, 2)} ms | "
                 f"- | - | published | - |")
    L.append(f"| ... Chromium's rVFC readings, stamp -> presentationTime / expectedDisplayTime, p50 | "
             f"{fmt(g(n, 'present_latency_ms'))} / {fmt(g(n, 'expected_display_latency_ms'))} ms (without the extension "
             f"{fmt(g(x, 'present_latency_ms'))} / {fmt(g(x, 'expected_display_latency_ms'))} ms) | aiortc "
             f"{fmt(g(a, 'present_latency_ms'))} / {fmt(g(a, 'expected_display_latency_ms'))} ms | - | - | - |")
    L.append(f"| ... Chromium decoded, frames dropped, freezes (node / without / aiortc) | {fmt(n.get('fps_decoded'), 2)} fps, "
             f"{n.get('frames_dropped')}, {n.get('freezes')} / {fmt(x.get('fps_decoded'), 2)} fps, {x.get('frames_dropped')}, "
             f"{x.get('freezes')} | {fmt(a.get('fps_decoded'), 2)} fps, {a.get('frames_dropped')}, {a.get('freezes')} | - | 30 fps | - |")
    return L


def write_benchmarks_md(text: str, results_rel: str) -> None:
    path = os.path.join(ROOT, "BENCHMARKS.md")
    begin, end = "<!-- bench:begin (generated by bench/run.sh; edits inside are overwritten) -->", "<!-- bench:end -->"
    with open(path) as f:
        doc = f.read()
    block = f"{begin}\n{text}\n\nRaw samples: [`{results_rel}`]({results_rel}).\n{end}"
    if begin in doc and end in doc:
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n## Latest run\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", help="comma list of phases: " + ",".join(PHASES))
    p.add_argument("--out", help="results directory (default: bench/results/<date> for a full run, "
                                 "target/bench/<date>-quick for --quick)")
    p.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md (full runs write it)")
    p.add_argument("--command", default="bench/suite.py")
    args = p.parse_args()
    args.c = dict(QUICK if args.quick else FULL)
    for k in args.c:  # BENCH_CPU_S=60 etc. override a duration
        e = os.environ.get("BENCH_" + k.upper())
        if e:
            args.c[k] = type(args.c[k])(e) if not isinstance(args.c[k], list) else [int(x) for x in e.split(",")]
    phases = args.only.split(",") if args.only else PHASES
    for ph in phases:
        if ph not in PHASES:
            p.error(f"unknown phase {ph!r}")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d-%H%M")
    args.results = args.out or (os.path.join(ROOT, "target", "bench", stamp + "-quick") if args.quick
                                else os.path.join(ROOT, "bench", "results", stamp))
    os.makedirs(args.results, exist_ok=True)
    args.cache = os.path.join(ROOT, "target", "bench", "y4m")
    args.cpu_used = int(os.environ.get("BENCH_CPU_USED", "-6"))  # the node's default encoder.cpu_used
    # The pacing soak's encoder.send_offset_ms (the node's default is 0: no hold).
    args.send_offset_ms = int(os.environ.get("BENCH_SEND_OFFSET_MS", "12"))
    global TMP
    TMP = tempfile.mkdtemp(prefix="sutantra-bench-")
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    env = environment(args)
    out: dict = {"env": env, "durations": args.c}
    t0 = time.monotonic()
    failed = []
    for ph in phases:
        ts = time.monotonic()
        try:
            globals()["phase_" + ph](args, out)
        except Fail as e:
            log(f"phase {ph} FAILED: {e}")
            failed.append(ph)
            out.setdefault("failed", {})[ph] = str(e)[:2000]
        out.setdefault("phase_seconds", {})[ph] = round(time.monotonic() - ts, 1)
        with open(os.path.join(args.results, "summary.json"), "w") as f:
            json.dump(out, f, indent=1, default=str)
    out["total_seconds"] = round(time.monotonic() - t0, 1)
    text = table(env, out, args)
    text += f"\n\nPhases took {out['phase_seconds']} s, {out['total_seconds']:.0f} s in all."
    if failed:
        text += f"\n\nFAILED phases: {', '.join(failed)} (see summary.json)."
    with open(os.path.join(args.results, "summary.json"), "w") as f:
        json.dump(out, f, indent=1, default=str)
    with open(os.path.join(args.results, "table.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    if not args.quick and not args.no_write and not args.only:
        write_benchmarks_md(text, os.path.relpath(args.results, ROOT))
        log("BENCHMARKS.md updated")
    log(f"results in {args.results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
