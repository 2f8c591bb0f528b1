#!/usr/bin/env python3
"""TEST CODE ONLY: a real SFU (Janus, Debian's `janus` package) behind a minimal WHIP front end,
for the Sutantra node's end-to-end publish test (tests/tests/e2e/janus.rs). Not for production.

    janus_harness.py start [--room 1234] [--debug-level 4] [--no-stdin]

`start` writes Janus's configuration into a new temporary directory (only the VideoRoom plugin
and the HTTP transport are loaded, from the package's library folder; nothing from /etc/janus;
the room, VP8, is defined there), starts `janus` with its HTTP API on a free 127.0.0.1 port,
waits until `GET /janus/info` answers and the room exists (polled), starts the WHIP front end on
another free 127.0.0.1 port and prints one JSON line:

    {"event": "ready", "whip_url": "http://127.0.0.1:W/whip/1234",
     "janus_url": "http://127.0.0.1:J/janus", "room": 1234, "janus_pid": N, "generation": 1,
     "ice_address": "...", ...}

ICE: no STUN/TURN server, IPv4 host candidates only. Janus never gathers candidates on a
loopback interface (its src/ice.c skips IFF_LOOPBACK interfaces; with nothing else allowed,
libnice would gather on every address, IPv6 included), so `ice_enforce_list` names one local,
non-loopback IPv4 address of this machine (`ice_address`). Peers on this machine reach it through
the kernel's local delivery: no packet leaves the machine.

Then it stays up until stdin closes (unless --no-stdin) or it gets SIGTERM/SIGINT; Janus is then
stopped and the directory removed. Signals restart Janus on the same ports with the same
configuration (so the room exists again as soon as Janus answers); when the new one is ready
another JSON line is printed: {"event": "restarted", "generation": 2, "down_ms": ..., ...}.

    SIGUSR1  stop Janus gracefully (SIGTERM, as a service manager's restart does), start it again
    SIGUSR2  kill Janus (SIGKILL, a crash: no goodbye to its peers), start it again

Janus's own log goes to this program's stderr. If `janus` is missing, one JSON line
{"error": "... run scripts/setup.sh ..."} is printed and the exit status is 2.

The WHIP front end (a subset of RFC 9725) is a bridge to Janus's HTTP REST API, standard library
only. (Debian's `simple-whip-server` does the same over Janus's WebSocket API, but it depends on
Debian's node-* packages and libnode108, which conflict with the Node.js 20 that the Playwright
tests need, and it reads its port and Janus address from /etc/simple-whip-server/config.js.)

    POST   /whip/<room>         SDP offer -> creates a Janus session, attaches
                                janus.plugin.videoroom, joins <room> as a publisher, sends
                                `configure` with the offer (jsep) and answers 201 Created with
                                Janus's SDP answer and Location: /whip/<room>/<resource id>
    DELETE /whip/<room>/<id>    destroys that Janus session -> 200 (404 if unknown)
    PATCH  /whip/<room>/<id>    405 (no trickle: the offer carries its candidates)

Janus unreachable answers 503; Janus errors answer 4xx/5xx with Janus's reason as text. Each
session's events are long-polled (which also keeps it alive) and logged.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import glob
import http.server
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

PLUGIN = "janus.plugin.videoroom"
# How long Janus may take to answer /janus/info after it was started.
READY_TIMEOUT_S = 30.0
# One Janus API request (long polls use their own, longer, timeout).
API_TIMEOUT_S = 10.0
# How long a WHIP POST waits for Janus's SDP answer.
ANSWER_TIMEOUT_S = 15.0


def log(msg: str) -> None:
    print(f"[janus_harness] {msg}", file=sys.stderr, flush=True)


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_ipv4() -> tuple[str, str] | None:
    """(interface, IPv4 address) of the first interface that is up, running and not loopback."""
    siocgifflags, siocgifaddr = 0x8913, 0x8915
    iff_up, iff_loopback, iff_running = 0x1, 0x8, 0x40
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in sorted(socket.if_nameindex()):
            req = struct.pack("256s", name.encode()[:15])
            try:
                flags = struct.unpack("H", fcntl.ioctl(s.fileno(), siocgifflags, req)[16:18])[0]
                if not flags & iff_up or not flags & iff_running or flags & iff_loopback:
                    continue
                return name, socket.inet_ntoa(fcntl.ioctl(s.fileno(), siocgifaddr, req)[20:24])
            except OSError:
                continue  # no IPv4 address on this interface
    return None


DUMMY_IF, DUMMY_PEER, DUMMY_IP = "sutantra-j0", "sutantra-j1", "198.18.0.1"


def make_dummy_interface() -> tuple[str, str] | None:
    """A dummy interface with one local address, for ICE on a loopback-only machine; None if it
    cannot be made (not root, no `ip`). Removed by an atexit hook."""
    import atexit
    import subprocess

    def run(cmd: list[str]) -> str | None:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{' '.join(cmd)}: {e}"
        return None if r.returncode == 0 else f"{' '.join(cmd)}: {r.stderr.strip()}"

    # A dummy device where the kernel has the module, else a veth pair (its far end stays idle).
    err = run(["ip", "link", "add", DUMMY_IF, "type", "dummy"])
    if err is not None:
        err = run(["ip", "link", "add", DUMMY_IF, "type", "veth", "peer", "name", DUMMY_PEER])
        if err is None:
            err = run(["ip", "link", "set", DUMMY_PEER, "up"])
    for cmd in (
        ["ip", "addr", "add", f"{DUMMY_IP}/32", "dev", DUMMY_IF],
        ["ip", "link", "set", DUMMY_IF, "up"],
    ):
        err = err or run(cmd)
    if err is not None:
        log(f"dummy interface: {err}")
        run(["ip", "link", "del", DUMMY_IF])
        return None
    atexit.register(lambda: subprocess.run(["ip", "link", "del", DUMMY_IF], capture_output=True))
    log(f"no IPv4 address besides loopback: made {DUMMY_IF} with {DUMMY_IP} for ICE")
    return DUMMY_IF, DUMMY_IP


def janus_lib_dir() -> str | None:
    """The package's library folder (multiarch: /usr/lib/<triplet>/janus)."""
    for pattern in ("/usr/lib/*/janus", "/usr/lib/janus", "/usr/local/lib/janus"):
        for d in sorted(glob.glob(pattern)):
            needed = ("plugins/libjanus_videoroom.so", "transports/libjanus_http.so")
            if all(os.path.isfile(os.path.join(d, n)) for n in needed):
                return d
    return None


def write_config(root: str, lib: str, http_port: int, room: int, debug_level: int, ice_ip: str) -> str:
    """Writes Janus's configuration under `root`; returns the main file's path."""
    conf = os.path.join(root, "conf")
    folders = {name: os.path.join(root, name) for name in ("plugins", "transports", "events", "loggers")}
    for d in [conf, *folders.values()]:
        os.makedirs(d, exist_ok=True)
    # Janus loads every *.so of its folders: each folder holds only what the test needs.
    for kind, name in (("plugins", "libjanus_videoroom.so"), ("transports", "libjanus_http.so")):
        os.symlink(os.path.join(lib, kind, name), os.path.join(folders[kind], name))
    with open(os.path.join(conf, "janus.jcfg"), "w", encoding="utf-8") as f:
        f.write(
            f"""# Generated by tests/e2e/janus/janus_harness.py (test code).
general: {{
	configs_folder = "{conf}"
	plugins_folder = "{folders['plugins']}"
	transports_folder = "{folders['transports']}"
	events_folder = "{folders['events']}"
	loggers_folder = "{folders['loggers']}"
	debug_level = {debug_level}
	server_name = "sutantra-e2e-janus"
	session_timeout = 60
}}
media: {{
	ipv6 = false
}}
nat: {{
	# Host candidates on one local IPv4 address (Janus never gathers on a loopback interface),
	# no STUN/TURN server: peers on this machine reach it through the kernel's local delivery,
	# so nothing leaves the machine.
	ice_enforce_list = "{ice_ip}"
	ignore_mdns = true
	nice_debug = false
}}
plugins: {{
}}
transports: {{
}}
events: {{
	broadcast = false
}}
loggers: {{
}}
"""
        )
    with open(os.path.join(conf, "janus.transport.http.jcfg"), "w", encoding="utf-8") as f:
        f.write(
            f"""# Generated by tests/e2e/janus/janus_harness.py (test code).
general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
cors: {{
}}
"""
        )
    with open(os.path.join(conf, "janus.plugin.videoroom.jcfg"), "w", encoding="utf-8") as f:
        f.write(
            f"""# Generated by tests/e2e/janus/janus_harness.py (test code).
general: {{
	string_ids = false
}}
room-{room}: {{
	description = "sutantra e2e"
	publishers = 4
	bitrate = 0
	fir_freq = 10
	videocodec = "vp8"
	audiocodec = "opus"
	record = false
}}
"""
        )
    return os.path.join(conf, "janus.jcfg")


# --- Janus HTTP REST API ----------------------------------------------------------------------


class JanusError(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def tid() -> str:
    return secrets.token_hex(6)


def api(base: str, path: str, body: dict | None = None, timeout: float = API_TIMEOUT_S) -> dict:
    """One Janus API request (POST with `body`, else GET); raises JanusError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            reply = json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        raise JanusError(502, f"Janus answered HTTP {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        raise JanusError(503, f"Janus unavailable: {e}") from e
    except ValueError as e:
        raise JanusError(502, f"Janus answered no JSON: {e}") from e
    if isinstance(reply, dict) and reply.get("janus") == "error":
        err = reply.get("error", {})
        raise JanusError(502, f"Janus error {err.get('code')}: {err.get('reason')}")
    return reply


def plugin_data(reply: dict) -> dict:
    data = reply.get("plugindata", {}).get("data", {})
    if "error_code" in data or (data.get("videoroom") == "event" and "error" in data):
        code = data.get("error_code")
        # 426: no such room; 436: already a publisher with that ID.
        status = 404 if code == 426 else 409 if code == 436 else 502
        raise JanusError(status, f"VideoRoom error {code}: {data.get('error')}")
    return data


class Session:
    """A Janus session with one VideoRoom handle (HTTP transport, events by long poll)."""

    def __init__(self, base: str):
        self.base = base
        self.id = api(base, "/janus", {"janus": "create", "transaction": tid()})["data"]["id"]
        try:
            attach = {"janus": "attach", "plugin": PLUGIN, "transaction": tid()}
            reply = api(base, f"/janus/{self.id}", attach)
            self.handle = reply["data"]["id"]
        except Exception:
            self.destroy()
            raise
        self.pending: list[dict] = []

    def request(self, body: dict) -> dict:
        """A synchronous VideoRoom request (exists, list, listparticipants, ...)."""
        msg = {"janus": "message", "transaction": tid(), "body": body}
        reply = api(self.base, f"/janus/{self.id}/{self.handle}", msg)
        return plugin_data(reply)

    def send(self, body: dict, jsep: dict | None = None) -> str:
        """An asynchronous request (join, configure): returns its transaction."""
        t = tid()
        msg = {"janus": "message", "transaction": t, "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        api(self.base, f"/janus/{self.id}/{self.handle}", msg)
        return t

    def poll(self, timeout: float = 35.0) -> list[dict]:
        """One long poll (Janus answers within 30 s, with a keepalive if nothing happened)."""
        reply = api(self.base, f"/janus/{self.id}?maxev=10", timeout=timeout)
        return reply if isinstance(reply, list) else [reply]

    def wait_event(self, transaction: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.pending):
                if ev.get("transaction") == transaction and ev.get("janus") == "event":
                    del self.pending[i]
                    return ev
            if time.monotonic() > deadline:
                raise JanusError(504, f"no answer from Janus within {timeout:.0f} s")
            self.pending.extend(self.poll())

    def destroy(self) -> None:
        try:
            api(self.base, f"/janus/{self.id}", {"janus": "destroy", "transaction": tid()}, timeout=3)
        except JanusError:
            pass


# --- Janus process ------------------------------------------------------------------------------


def _die_with_parent() -> None:
    # Janus must not outlive this harness (a test that is killed must not leave Janus running).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Janus:
    def __init__(self, config: str, http_port: int, room: int):
        self.config = config
        self.conf_dir = os.path.dirname(config)
        self.base = f"http://127.0.0.1:{http_port}"
        self.room = room
        self.proc: subprocess.Popen | None = None
        self.generation = 0

    def start(self) -> None:
        self.generation += 1
        self.proc = subprocess.Popen(
            ["janus", "--config", self.config, "--configs-folder", self.conf_dir, "--disable-colors"],
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            stderr=sys.stderr,
            preexec_fn=_die_with_parent,
        )
        log(f"janus started (pid {self.proc.pid}, generation {self.generation})")
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                status = self.proc and self.proc.returncode
                raise RuntimeError(f"janus exited during startup with status {status}")
            try:
                info = api(self.base, "/janus/info", timeout=2)
                if PLUGIN in info.get("plugins", {}):
                    s = Session(self.base)
                    try:
                        exists = s.request({"request": "exists", "room": self.room}).get("exists")
                    finally:
                        s.destroy()
                    if exists:
                        return
                    last = f"room {self.room} does not exist"
                else:
                    last = f"{PLUGIN} not loaded: {sorted(info.get('plugins', {}))}"
            except JanusError as e:
                last = e.reason
            time.sleep(0.05)
        raise RuntimeError(f"janus not ready within {READY_TIMEOUT_S:.0f} s: {last}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log("janus did not stop within 10 s of SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        log(f"janus (pid {self.proc.pid}) ended with status {self.proc.returncode}")


# --- WHIP front end -----------------------------------------------------------------------------


def candidates(sdp: str) -> list[str]:
    """The address:port of each candidate line of an SDP."""
    fields = [line.split() for line in sdp.splitlines() if line.startswith("a=candidate:")]
    return [f"{f[4]}:{f[5]}" for f in fields if len(f) > 5]


class Bridge:
    def __init__(self, janus: Janus):
        self.janus = janus
        self.lock = threading.Lock()
        self.resources: dict[str, Session] = {}

    def publish(self, room: int, offer: str) -> tuple[str, str]:
        """Publishes `offer` into `room`; returns (resource id, SDP answer)."""
        s = Session(self.janus.base)
        try:
            join = {"request": "join", "ptype": "publisher", "room": room, "display": "sutantra-whip"}
            t = s.send(join)
            joined = plugin_data(s.wait_event(t, ANSWER_TIMEOUT_S))
            if joined.get("videoroom") != "joined":
                raise JanusError(502, f"join: unexpected answer {joined}")
            configure = {"request": "configure", "audio": True, "video": True}
            t = s.send(configure, {"type": "offer", "sdp": offer})
            ev = s.wait_event(t, ANSWER_TIMEOUT_S)
            plugin_data(ev)
            jsep = ev.get("jsep") or {}
            if jsep.get("type") != "answer" or not jsep.get("sdp"):
                raise JanusError(502, f"configure: no SDP answer in {ev}")
            # The offer carried every candidate (no trickle): tell Janus gathering is complete.
            done = {"janus": "trickle", "transaction": tid(), "candidate": {"completed": True}}
            api(s.base, f"/janus/{s.id}/{s.handle}", done)
        except Exception:
            s.destroy()
            raise
        rid = secrets.token_hex(8)
        with self.lock:
            self.resources[rid] = s
        threading.Thread(target=self.keep, args=(rid, s), daemon=True).start()
        log(
            f"publisher joined room {room}: janus session {s.id}, resource {rid}; candidates: "
            f"offer {candidates(offer)}, answer {candidates(jsep['sdp'])}"
        )
        return rid, jsep["sdp"]

    def keep(self, rid: str, s: Session) -> None:
        """Long-polls the session's events (which also keeps it alive) until it ends."""
        while True:
            with self.lock:
                if self.resources.get(rid) is not s:
                    return
            try:
                events = s.poll()
            except JanusError as e:
                log(f"resource {rid}: session {s.id} gone ({e.reason})")
                with self.lock:
                    if self.resources.get(rid) is s:
                        del self.resources[rid]
                return
            for ev in events:
                kind = ev.get("janus")
                if kind in ("webrtcup", "hangup", "media", "slowlink"):
                    extra = {k: ev[k] for k in ("reason", "type", "receiving", "uplink") if k in ev}
                    log(f"resource {rid}: {kind} {json.dumps(extra)}")

    def delete(self, rid: str) -> bool:
        with self.lock:
            s = self.resources.pop(rid, None)
        if s is None:
            return False
        s.destroy()
        log(f"resource {rid}: deleted (janus session {s.id} destroyed)")
        return True

    def forget_all(self) -> None:
        with self.lock:
            self.resources.clear()


def make_handler(bridge: Bridge):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args) -> None:
            log("whip: " + (fmt % args))

        def reply(
            self, status: int, body: str = "", ctype: str = "text/plain", headers: dict | None = None
        ) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def parts(self) -> list[str]:
            return [p for p in self.path.split("?")[0].split("/") if p]

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace")
            p = self.parts()
            if len(p) != 2 or p[0] != "whip" or not p[1].isdigit():
                return self.reply(404, "POST /whip/<room>\n")
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/sdp" or not body.startswith("v=0"):
                return self.reply(415, "want an SDP offer (Content-Type: application/sdp)\n")
            try:
                rid, answer = bridge.publish(int(p[1]), body)
            except JanusError as e:
                log(f"whip: POST refused: {e.status} {e.reason}")
                return self.reply(e.status, e.reason + "\n")
            except Exception as e:  # a reply from Janus this bridge did not expect
                log(f"whip: POST failed: {e!r}")
                return self.reply(502, f"unexpected answer from Janus: {e!r}\n")
            self.reply(201, answer, "application/sdp", {"Location": f"/whip/{p[1]}/{rid}"})

        def do_DELETE(self) -> None:
            p = self.parts()
            if len(p) == 3 and p[0] == "whip" and bridge.delete(p[2]):
                return self.reply(200)
            self.reply(404, "no such WHIP session\n")

        def do_PATCH(self) -> None:
            why = "trickle ICE is not supported: send every candidate in the offer\n"
            self.reply(405, why, headers={"Allow": "POST, DELETE"})

        def do_GET(self) -> None:
            self.reply(405, "WHIP: POST an offer\n", headers={"Allow": "POST"})

    return Handler


# --- main ---------------------------------------------------------------------------------------


def start(args: argparse.Namespace) -> int:
    if shutil.which("janus") is None:
        emit({"error": "janus (Debian's `janus` package) is not installed: run scripts/setup.sh (as root)"})
        return 2
    lib = janus_lib_dir()
    if lib is None:
        emit({"error": "Janus's VideoRoom plugin or HTTP transport is missing: run scripts/setup.sh (as root)"})
        return 2
    local = local_ipv4()
    dummy = None
    if local is None:
        # A machine with loopback only: a dummy interface with an address from the benchmarking
        # range (RFC 2544), removed at exit; traffic to it is delivered locally like loopback's.
        dummy = make_dummy_interface()
        local = dummy
    if local is None:
        emit({"error": "no IPv4 address besides loopback (Janus never gathers ICE candidates on "
                       "loopback), and no dummy interface could be made (run as root with iproute2)"})
        return 2
    root = tempfile.mkdtemp(prefix="sutantra-janus-")
    http_port = free_port()
    config = write_config(root, lib, http_port, args.room, args.debug_level, local[1])
    janus = Janus(config, http_port, args.room)
    events: queue.Queue[str] = queue.Queue()
    signal.signal(signal.SIGTERM, lambda *_: events.put("stop"))
    signal.signal(signal.SIGINT, lambda *_: events.put("stop"))
    signal.signal(signal.SIGUSR1, lambda *_: events.put("restart"))
    signal.signal(signal.SIGUSR2, lambda *_: events.put("crash"))

    def stdin_watch() -> None:
        try:
            # os.read, not sys.stdin: a daemon thread blocked in a buffered read would hold its
            # lock at interpreter shutdown.
            while os.read(0, 4096):
                pass
        except (OSError, ValueError):
            pass
        events.put("stop")

    server = None
    try:
        try:
            janus.start()
        except RuntimeError as e:
            emit({"error": str(e)})
            return 1
        bridge = Bridge(janus)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(bridge))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        whip_port = server.server_address[1]
        emit(
            {
                "event": "ready",
                "whip_url": f"http://127.0.0.1:{whip_port}/whip/{args.room}",
                "janus_url": f"{janus.base}/janus",
                "room": args.room,
                "janus_pid": janus.proc.pid,
                "generation": janus.generation,
                "config_dir": os.path.dirname(config),
                "ice_address": local[1],
                "ice_interface": local[0],
            }
        )
        if not args.no_stdin:
            threading.Thread(target=stdin_watch, daemon=True).start()
        reported_exit = False
        while True:
            try:
                ev = events.get(timeout=0.2)
            except queue.Empty:
                if janus.proc.poll() is not None and not reported_exit:
                    reported_exit = True
                    emit({"event": "janus_exited", "status": janus.proc.returncode})
                continue
            if ev == "stop":
                break
            log(f"restarting janus ({'SIGKILL' if ev == 'crash' else 'SIGTERM'})")
            t0 = time.monotonic()
            janus.stop(kill=ev == "crash")
            bridge.forget_all()
            try:
                janus.start()
            except RuntimeError as e:
                emit({"event": "restart_failed", "error": str(e)})
                continue
            reported_exit = False
            emit(
                {
                    "event": "restarted",
                    "generation": janus.generation,
                    "janus_pid": janus.proc.pid,
                    "down_ms": round((time.monotonic() - t0) * 1000),
                }
            )
    finally:
        if server is not None:
            server.shutdown()
        janus.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start Janus and the WHIP front end; print one JSON line")
    st.add_argument("--room", type=int, default=1234)
    st.add_argument("--debug-level", type=int, default=4, help="Janus's log level, 0-7")
    st.add_argument("--no-stdin", action="store_true", help="keep running when stdin closes (for a shell)")
    args = ap.parse_args()
    if args.cmd == "start":
        return start(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
