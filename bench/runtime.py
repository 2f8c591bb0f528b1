#!/usr/bin/env python3
"""Issue 7, runtime row: the node's WebRTC send path on tokio and on smol, A/B (bench/runtime-probe).

For each variant (a build of bench/runtime-probe with feature `tokio` or `smol`), one after the
other on the same machine: start the probe (pinned to CPU 0), wait for /healthz, then with the
suite's viewers (bench/viewer.py, pinned to CPU 1):

  1 viewer   a decoding viewer; CPU of the probe over --cpu-s seconds from its first frame
             (utime+stime from /proc/PID/stat, as a fraction of one core); VmRSS/VmHWM and
             Threads (/proc/PID/status) --mem-s seconds into that window
  4, 16      counting viewers added beside it; after 1 s settling, CPU over --mem-s seconds while
             the counting viewers measure their fps, then VmRSS/VmHWM/Threads

plus the idle RSS (after /healthz, before any viewer), the decoding viewer's received fps, and
the size of each binary (x86_64; aarch64 too when runtime-probe-VARIANT-aarch64 exists in
--bin-dir). A sampler thread logs the probe's RSS, CPU and threads once a second.

    bench/runtime.py [--out target/bench/runtime] [--bin-dir target/runtime-probe/bin]
                     [--variants tokio,smol] [--cpu-s 30] [--mem-s 8] [--steps 1,4,16]

Build the binaries first (see bench/runtime-probe/README.md). Prints a markdown table (the two
variants side by side, and smol/tokio) and writes results.json, per-second samples and logs
into a new directory under --out. Everything it starts runs in its own process group and is
killed on exit. Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python3")
PY = VENV_PY if os.path.exists(VENV_PY) else sys.executable
CLK = os.sysconf("SC_CLK_TCK")
# The suite's process helpers: children in their own process groups, stopped by group (only
# what this script started), and the /proc CPU reading.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite import CHILDREN, cleanup, cpu_s, free_port, stop  # noqa: E402


def log(msg: str) -> None:
    print(f"[runtime {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Fail(Exception):
    pass


# --- processes ------------------------------------------------------------------------------------


def spawn(cmd: list[str], logdir: str, name: str, *, cpu: str | None, stdin=None, stdout=None) -> subprocess.Popen:
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    err = open(os.path.join(logdir, name + ".log"), "ab")
    p = subprocess.Popen(cmd, stdin=stdin, stdout=stdout if stdout is not None else err, stderr=err,
                         start_new_session=True, cwd=ROOT)
    p.name = name
    CHILDREN.append(p)
    return p


# --- /proc ----------------------------------------------------------------------------------------


def status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def thread_names(pid: int) -> list[str]:
    names = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names


def task_stats(pid: int) -> dict:
    """Per thread: name, CPU seconds (utime+stime), voluntary and involuntary context switches."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            row = {"cpu_s": (int(fields[11]) + int(fields[12])) / CLK}
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k == "Name":
                        row["name"] = v.strip()
                    elif k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        row[k.split("_")[0]] = int(v)
            out[tid] = row
        except OSError:
            pass
    return out


def by_thread(t0: dict, t1: dict, seconds: float) -> dict:
    """Per thread name over a window: % of one core and context switches per second."""
    out: dict = {}
    for tid, b in t1.items():
        a = t0.get(tid, {"cpu_s": 0.0, "voluntary": 0, "nonvoluntary": 0})
        d = out.setdefault(b.get("name", "?"), {"cpu_pct": 0.0, "ctxsw_per_s": 0.0})
        d["cpu_pct"] += (b["cpu_s"] - a["cpu_s"]) / seconds * 100
        d["ctxsw_per_s"] += (b.get("voluntary", 0) - a.get("voluntary", 0) + b.get("nonvoluntary", 0)
                             - a.get("nonvoluntary", 0)) / seconds
    return {k: {"cpu_pct": round(v["cpu_pct"], 3), "ctxsw_per_s": round(v["ctxsw_per_s"], 1)} for k, v in out.items()}


class Sampler(threading.Thread):
    """Once a second: seconds since start, VmRSS, VmHWM, Threads, CPU seconds, phase."""

    def __init__(self, pid: int, path: str):
        super().__init__(daemon=True)
        self.pid, self.path, self.phase = pid, path, "start"
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        with open(self.path, "w") as f:
            f.write("t_s,phase,vmrss_kib,vmhwm_kib,threads,cpu_s\n")
            while not self.done.wait(1.0):
                try:
                    st, c = status(self.pid), cpu_s(self.pid)
                except OSError:
                    return
                f.write(f"{time.monotonic() - t0:.2f},{self.phase},{st['VmRSS']},{st['VmHWM']},{st['Threads']},{c:.2f}\n")
                f.flush()


# --- the viewers (bench/viewer.py, the suite's) ---------------------------------------------------


class DecodeViewer:
    def __init__(self, url: str, seconds: float, logdir: str, name: str, cpu: str | None):
        cmd = [PY, os.path.join(HERE, "viewer.py"), "decode", "--url", url, "--seconds", str(seconds)]
        self.p = spawn(cmd, logdir, name, cpu=cpu, stdout=subprocess.PIPE)

    def wait_first(self) -> float:
        line = self.p.stdout.readline().decode()
        if not line.startswith("FIRST "):
            raise Fail(f"{self.p.name}: no first frame: {(line + self.p.stdout.read().decode()).strip()[:500]}")
        return float(line.split()[1])

    def result(self, timeout: float) -> dict:
        out, _ = self.p.communicate(timeout=timeout)
        stop(self.p)
        lines = [line for line in out.decode().splitlines() if line.startswith("{")]
        if not lines:
            raise Fail(f"{self.p.name}: no result")
        return json.loads(lines[-1])


class CountViewers:
    def __init__(self, url: str, logdir: str, name: str, cpu: str | None):
        cmd = [PY, os.path.join(HERE, "viewer.py"), "count", "--url", url]
        self.p = spawn(cmd, logdir, name, cpu=cpu, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def cmd(self, line: str) -> dict:
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()
        out = self.p.stdout.readline().decode()
        if not out:
            raise Fail(f"{self.p.name} ended (see its log)")
        return json.loads(out)

    def close(self) -> None:
        try:
            self.p.stdin.write(b"quit\n")
            self.p.stdin.flush()
            self.p.wait(20)
        except Exception:
            pass
        stop(self.p)


# --- one variant ----------------------------------------------------------------------------------


def wait_healthz(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Fail(f"{proc.name} exited with {proc.returncode} before /healthz answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return json.loads(r.read())
        except Exception:
            pass
        time.sleep(0.02)
    raise Fail(f"{proc.name}: /healthz did not answer within {timeout:.0f} s")


def healthz(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return json.loads(r.read())


def run_variant(args, variant: str, binary: str, rundir: str) -> dict:
    port = free_port()
    res: dict = {"variant": variant, "binary": binary}
    probe = spawn([binary, "--port", str(port)], rundir, f"{variant}-probe", cpu=args.probe_cpu)
    sampler = Sampler(probe.pid, os.path.join(rundir, f"{variant}-samples.csv"))
    sampler.start()
    dv = cv = None
    try:
        t0 = time.monotonic()
        h = wait_healthz(port, probe)
        res["startup_s"] = round(time.monotonic() - t0, 2)  # includes the 150-frame encode
        if h.get("runtime") != variant:
            raise Fail(f"{binary} reports runtime {h.get('runtime')!r}, expected {variant!r}")
        time.sleep(2.0)
        st = status(probe.pid)
        res["idle"] = {"rss_kib": st["VmRSS"], "hwm_kib": st["VmHWM"], "threads": st["Threads"],
                       "thread_names": thread_names(probe.pid)}
        url = f"http://127.0.0.1:{port}/whep"
        steps = [int(s) for s in args.steps.split(",")]
        # The decoding viewer stays for the whole run; its window covers the counting steps too.
        decode_s = args.cpu_s + 1.5 + (len(steps) - 1) * (args.mem_s + 15)
        sampler.phase = "1viewer"
        dv = DecodeViewer(url, decode_s, rundir, f"{variant}-decode", args.viewer_cpu)
        dv.wait_first()
        time.sleep(0.3)
        c0, t0, k0 = cpu_s(probe.pid), time.monotonic(), task_stats(probe.pid)
        time.sleep(args.mem_s)
        st = status(probe.pid)
        time.sleep(max(0.0, args.cpu_s - (time.monotonic() - t0)))
        c1, t1, k1 = cpu_s(probe.pid), time.monotonic(), task_stats(probe.pid)
        res["threads_1viewer"] = by_thread(k0, k1, t1 - t0)
        hz = healthz(port)
        out_steps = [{"viewers": steps[0], "cpu_core_frac": round((c1 - c0) / (t1 - t0), 4),
                      "cpu_window_s": round(t1 - t0, 2), "rss_kib": st["VmRSS"], "hwm_kib": st["VmHWM"],
                      "anon_kib": st.get("RssAnon"), "threads": st["Threads"],
                      "probe_viewers": hz.get("viewers")}]
        log(f"{variant}: {out_steps[-1]}")
        if len(steps) > 1:
            cv = CountViewers(url, rundir, f"{variant}-count", args.viewer_cpu)
            have = steps[0]
            for n in steps[1:]:
                sampler.phase = f"{n}viewers"
                a = cv.cmd(f"add {n - have}")
                have = n
                if a.get("errors"):
                    log(f"{variant}: viewer errors at {n}: {a['errors']}")
                time.sleep(1.0)
                c0, t0, k0 = cpu_s(probe.pid), time.monotonic(), task_stats(probe.pid)
                m = cv.cmd(f"measure {args.mem_s}")
                c1, t1, k1 = cpu_s(probe.pid), time.monotonic(), task_stats(probe.pid)
                res[f"threads_{n}viewers"] = by_thread(k0, k1, t1 - t0)
                st = status(probe.pid)
                hz = healthz(port)
                fps = m.get("fps") or []
                out_steps.append({"viewers": n, "cpu_core_frac": round((c1 - c0) / (t1 - t0), 4),
                                  "cpu_window_s": round(t1 - t0, 2), "rss_kib": st["VmRSS"],
                                  "hwm_kib": st["VmHWM"], "anon_kib": st.get("RssAnon"),
                                  "threads": st["Threads"], "probe_viewers": hz.get("viewers"),
                                  "count_viewers_ok": m.get("viewers"), "min_fps": m.get("min_fps"),
                                  "mean_fps": round(sum(fps) / len(fps), 2) if fps else None,
                                  "loadgen_cpu_frac": m.get("loadgen_cpu_frac")})
                log(f"{variant}: {out_steps[-1]}")
            res["thread_names_loaded"] = thread_names(probe.pid)
            sampler.phase = "closing"
            cv.close()
            cv = None
        res["steps"] = out_steps
        r = dv.result(timeout=decode_s + 60)
        dv = None
        res["decode_viewer"] = {k: r.get(k) for k in ("frames", "fps", "fps_arrivals", "width", "height", "error")}
        res["final_hwm_kib"] = status(probe.pid)["VmHWM"]
    finally:
        if cv:
            cv.close()
        if dv:
            stop(dv.p)
        sampler.done.set()
        stop(probe)
    return res


# --- sizes, table ---------------------------------------------------------------------------------


def sizes(bin_dir: str, variants: list[str]) -> dict:
    out: dict = {}
    for v in variants:
        for arch, suffix in (("x86_64", ""), ("aarch64", "-aarch64")):
            path = os.path.join(bin_dir, f"runtime-probe-{v}{suffix}")
            if os.path.exists(path):
                out.setdefault(arch, {})[v] = os.path.getsize(path)
    return out


def mib(kib):
    return None if kib is None else kib / 1024


def fmt(x, nd=1, unit=""):
    return "-" if x is None else f"{x:.{nd}f}{unit}"


def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{b / a:.3f}"


def table(results: dict, size: dict, variants: list[str]) -> str:
    a, b = variants[0], variants[-1]
    head = " | ".join(variants)
    L = [f"| figure | {head} | {b}/{a} |", "|---" * (len(variants) + 2) + "|"]

    def row(name, vals, nd=1, unit=""):
        cells = " | ".join(fmt(v, nd, unit) for v in vals)
        L.append(f"| {name} | {cells} | {ratio(vals[0], vals[-1])} |")

    def step(v, n):
        for s in results[v]["steps"]:
            if s["viewers"] == n:
                return s
        return {}

    ns = [s["viewers"] for s in results[a]["steps"]]
    row(f"CPU, 1 decoding viewer, {results[a]['steps'][0]['cpu_window_s']:.0f} s (% of one core)",
        [step(v, ns[0]).get("cpu_core_frac", 0) * 100 for v in variants], 2)
    for n in ns[1:]:
        row(f"CPU, {n} viewers, {step(a, n).get('cpu_window_s', 0):.0f} s (% of one core)",
            [step(v, n).get("cpu_core_frac", 0) * 100 for v in variants], 2)
    row("VmRSS idle, before any viewer (MiB)", [mib(results[v]["idle"]["rss_kib"]) for v in variants], 2)
    for n in ns:
        row(f"VmRSS, {n} viewer(s) (MiB)", [mib(step(v, n).get("rss_kib")) for v in variants], 2)
    for n in ns:
        row(f"VmHWM, {n} viewer(s) (MiB)", [mib(step(v, n).get("hwm_kib")) for v in variants], 2)
    row("Threads idle", [results[v]["idle"]["threads"] for v in variants], 0)
    row("Context switches/s, 1 viewer (all threads)",
        [sum(t["ctxsw_per_s"] for t in results[v]["threads_1viewer"].values()) for v in variants], 0)
    row(f"Threads, {ns[-1]} viewers", [step(v, ns[-1]).get("threads") for v in variants], 0)
    row("decoding viewer, received fps", [results[v]["decode_viewer"].get("fps_arrivals") or
                                           results[v]["decode_viewer"].get("fps") for v in variants], 2)
    for n in ns[1:]:
        row(f"counting viewers at {n}, min fps", [step(v, n).get("min_fps") for v in variants], 2)
    for arch in ("x86_64", "aarch64"):
        if arch in size and all(v in size[arch] for v in variants):
            row(f"binary size {arch}, stripped (MiB)", [size[arch][v] / 2**20 for v in variants], 3)
    L.append("")
    L.append("CPU (% of one core) and context switches per second by thread, 1 viewer window:")
    L.append("")
    for v in variants:
        parts = [f"{k} {t['cpu_pct']:.2f}% {t['ctxsw_per_s']:.0f}/s"
                 for k, t in sorted(results[v]["threads_1viewer"].items())]
        L.append(f"- {v}: " + ", ".join(parts))
    return "\n".join(L)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(ROOT, "target", "bench", "runtime"))
    p.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "runtime-probe", "bin"))
    p.add_argument("--variants", default="tokio,smol")
    p.add_argument("--cpu-s", type=float, default=30.0)
    p.add_argument("--mem-s", type=float, default=8.0)
    p.add_argument("--steps", default="1,4,16")
    p.add_argument("--probe-cpu", default="0", help="taskset CPU list for the probe ('' = no pinning)")
    p.add_argument("--viewer-cpu", default="1", help="taskset CPU list for the viewers ('' = no pinning)")
    args = p.parse_args()
    args.probe_cpu = args.probe_cpu or None
    args.viewer_cpu = args.viewer_cpu or None
    variants = args.variants.split(",")
    for v in variants:
        b = os.path.join(args.bin_dir, f"runtime-probe-{v}")
        if not os.access(b, os.X_OK):
            print(f"runtime: {b} is missing: build it (bench/runtime-probe/README.md)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(f"signal {s}"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rundir = os.path.join(args.out, stamp)
    os.makedirs(rundir, exist_ok=True)
    env = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "host": platform.node(),
           "cpus": os.cpu_count(), "kernel": platform.release(), "cpu_model": None,
           "loadavg_at_start": open("/proc/loadavg").read().split()[:3], "command": " ".join(sys.argv),
           "probe_cpu": args.probe_cpu, "viewer_cpu": args.viewer_cpu}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                env["cpu_model"] = line.split(":", 1)[1].strip()
                break
    results: dict = {}
    try:
        for v in variants:
            log(f"{v}: start")
            results[v] = run_variant(args, v, os.path.join(args.bin_dir, f"runtime-probe-{v}"), rundir)
    except Fail as e:
        log(f"failed: {e}")
        return 1
    finally:
        cleanup()
    size = sizes(args.bin_dir, variants)
    with open(os.path.join(rundir, "results.json"), "w") as f:
        json.dump({"env": env, "sizes_bytes": size, "results": results}, f, indent=2)
    text = table(results, size, variants)
    with open(os.path.join(rundir, "table.md"), "w") as f:
        f.write(text + "\n")
    print(f"runtime probe, {env['date_utc']} UTC, {env['cpus']} CPUs ({env['cpu_model']}), "
          f"load at start {' '.join(env['loadavg_at_start'])}; raw: {os.path.relpath(rundir, ROOT)}\n")
    print(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()
