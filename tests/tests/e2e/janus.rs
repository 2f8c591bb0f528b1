//! Publishing into a real SFU: Janus (Debian's `janus` package, VideoRoom plugin) behind a WHIP
//! front end, with headless Chromium subscribed through Janus.
//!
//! `tests/e2e/janus/janus_harness.py start` runs Janus with its own generated configuration (only
//! the VideoRoom plugin and the HTTP transport, a VP8 room, no STUN server, IPv4 host candidates
//! on one local address: Janus never gathers on loopback) and a minimal WHIP-to-Janus bridge
//! (test code; Debian's `simple-whip-server` cannot be installed next to the Node.js 20 that
//! Playwright needs, see the harness's header). It prints the WHIP URL and Janus's HTTP API URL,
//! and restarts Janus on SIGUSR1 (SIGTERM, a clean restart) or SIGUSR2 (SIGKILL, a crash).
//! `tests/e2e/janus/janus_view.mjs` subscribes Chromium to the room's publisher through Janus's
//! HTTP API and measures the decoded frame rate.
//!
//! - the node publishes with `--publish <WHIP URL>`; Chromium decodes >= 29 fps at 640x480 VP8;
//! - Janus restarts cleanly: the node publishes again by itself (its backoff starts at 1 s) and
//!   Chromium decodes >= 29 fps again through the new Janus;
//! - Janus is killed and started again: the same, with a 5 s window;
//! - the node never exits, and on shutdown it DELETEs its session at the WHIP front end.
//!
//! Everything stays on this machine; readiness is polled (the measurement windows are the only
//! waits). Without `janus` (or Node.js, Chromium, playwright-core) the test FAILS and says to run
//! `scripts/setup.sh`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients;
use crate::node::{Node, tail};

/// How long the harness may take to start Janus and print its first line.
const HARNESS_READY: Duration = Duration::from_secs(40);
/// How long a Janus restart may take (the harness polls `/janus/info` and the room).
const RESTART: Duration = Duration::from_secs(40);
/// How long the node may take to publish again after Janus came back: it notices the relay is
/// gone (ICE consent, 2 s grace) and retries with backoff from 1 s (doubling to 30 s).
const REPUBLISH: Duration = Duration::from_secs(40);
/// The subscriber's measurement window, and the least frame rate it must see.
const WINDOW_S: u64 = 10;
const MIN_FPS: f64 = 29.0;

/// Whether `name` is an executable file on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `janus_harness.py start` as a child: its JSON lines arrive on `events`, everything it printed
/// (Janus's log included) is kept in `output`.
struct Harness {
    child: Child,
    events: mpsc::Receiver<Value>,
    output: Arc<Mutex<Vec<u8>>>,
    whip_url: String,
    janus_url: String,
    room: u64,
}

fn keep(sink: &Arc<Mutex<Vec<u8>>>, bytes: &[u8]) {
    sink.lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend_from_slice(bytes);
}

impl Harness {
    fn start() -> Harness {
        assert!(
            on_path("janus").is_some(),
            "`janus` is not installed (Debian's `janus` package, the SFU this test publishes \
             into): run `scripts/setup.sh` (as root)"
        );
        let mut child = Command::new(clients::python())
            .arg(clients::e2e_dir().join("janus/janus_harness.py"))
            .arg("start")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start janus_harness.py: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, events) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let sink = output.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    keep(&sink, format!("{line}\n").as_bytes());
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        let _ = tx.send(v);
                    }
                }
            });
        }
        if let Some(mut err) = child.stderr.take() {
            let sink = output.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    keep(&sink, &buf[..n]);
                }
            });
        }
        let mut h = Harness {
            child,
            events,
            output,
            whip_url: String::new(),
            janus_url: String::new(),
            room: 0,
        };
        let ready = h.next_event("the harness's first line", HARNESS_READY);
        assert!(
            ready["error"].is_null() && ready["event"] == "ready",
            "janus_harness.py did not start: {ready}\n{}",
            tail(&h.output(), 6000)
        );
        h.whip_url = ready["whip_url"].as_str().unwrap_or_default().to_string();
        h.janus_url = ready["janus_url"].as_str().unwrap_or_default().to_string();
        h.room = ready["room"].as_u64().unwrap_or_default();
        println!("[janus] harness ready: {ready}");
        h
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The harness's next JSON line; panics after `timeout` (or if it exits first).
    fn next_event(&mut self, what: &str, timeout: Duration) -> Value {
        match self.events.recv_timeout(timeout) {
            Ok(v) => v,
            Err(e) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "waited {timeout:?} for {what} from janus_harness.py ({e}; exited: {status:?})\n{}",
                    tail(&self.output(), 6000)
                );
            }
        }
    }

    /// Restarts Janus (`-USR1`: SIGTERM, `-USR2`: SIGKILL) and waits until the new one is ready.
    fn restart_janus(&mut self, signal: &str) -> Value {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([signal, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {pid} (the harness) failed");
        let ev = self.next_event("Janus to restart", RESTART);
        assert_eq!(
            ev["event"],
            "restarted",
            "{ev}\n{}",
            tail(&self.output(), 6000)
        );
        ev
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // SIGTERM lets the harness stop Janus and remove its directory; SIGKILL after 10 s
        // (Janus then dies with it: the harness sets its parent-death signal).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- janus_harness.py (Janus's log included) ---\n{}\n--- end ---",
                tail(&self.output(), 24000)
            );
        }
    }
}

/// Runs the Chromium subscriber for `seconds` and returns its JSON (asserting it succeeded).
fn view(h: &Harness, seconds: u64) -> Value {
    let pw = clients::e2e_dir().join("node_modules/playwright-core/package.json");
    assert!(
        pw.is_file(),
        "{} is missing: run `scripts/setup.sh` (as root) to install playwright-core",
        pw.display()
    );
    assert!(
        PathBuf::from("/usr/bin/chromium").is_file() || std::env::var_os("CHROMIUM").is_some(),
        "/usr/bin/chromium is missing: run `scripts/setup.sh` (as root) to install it"
    );
    let child = Command::new("node")
        .arg(clients::e2e_dir().join("janus/janus_view.mjs"))
        .args(["--janus", &h.janus_url])
        .args(["--room", &h.room.to_string()])
        .args(["--seconds", &seconds.to_string()])
        .args(["--timeout", "30"])
        .current_dir(clients::e2e_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("start `node janus_view.mjs` (is Node.js installed? run scripts/setup.sh): {e}")
        });
    let run = clients::finish(child, Duration::from_secs(seconds + 90), "janus_view.mjs");
    let v = run.json();
    assert!(
        run.success,
        "the Chromium subscriber failed: {v}\nstderr:\n{}\n--- harness ---\n{}",
        run.stderr,
        tail(&h.output(), 6000)
    );
    v
}

/// Checks one subscriber run: full rate, full size, VP8.
fn check_view(v: &Value, what: &str) {
    let fps = v["fps"].as_f64().unwrap_or(0.0);
    println!(
        "[janus] {what}: Chromium decoded {fps} fps at {}x{} ({}), {} frames, {} packets lost, \
         first frame {} ms after start, ICE {}",
        v["frameWidth"],
        v["frameHeight"],
        v["codec"],
        v["framesDecoded"],
        v["packetsLost"],
        v["first_frame_ms"],
        v["candidatePair"]
    );
    assert!(fps >= MIN_FPS, "{what}: {fps} fps, want >= {MIN_FPS}: {v}");
    assert_eq!(
        (v["frameWidth"].as_u64(), v["frameHeight"].as_u64()),
        (Some(640), Some(480)),
        "{what}: {v}"
    );
    assert_eq!(v["codec"], "video/VP8", "{what}: {v}");
}

/// The node's publish figures: (connected, sessions_total).
fn publish_state(node: &Node) -> (f64, f64) {
    let m = node.metrics();
    (
        m.get("sutantra_publish_connected").copied().unwrap_or(0.0),
        m.get("sutantra_publish_sessions_total")
            .copied()
            .unwrap_or(0.0),
    )
}

/// Polls `/metrics` until the node is connected with more than `sessions` sessions so far.
fn wait_published(node: &mut Node, h: &Harness, sessions: f64, what: &str) -> Duration {
    let t = Instant::now();
    loop {
        node.assert_alive();
        let (connected, total) = publish_state(node);
        if connected == 1.0 && total > sessions {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < REPUBLISH,
            "waited {REPUBLISH:?} for {what}: connected {connected}, sessions_total {total}\n\
             --- node output tail ---\n{}\n--- harness tail ---\n{}",
            tail(&node.output(), 4000),
            tail(&h.output(), 4000)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn node_publishes_into_janus_and_survives_janus_restarting() {
    let t0 = Instant::now();
    let mut h = Harness::start();
    let mut node = Node::start(&["--publish", &h.whip_url, "--ice-server", "none"]);
    let took = wait_published(&mut node, &h, 0.0, "the first WHIP session into Janus");
    println!(
        "[janus] publishing into Janus {} ms after the node was up",
        took.as_millis()
    );

    let v = view(&h, WINDOW_S);
    check_view(&v, "before the restart");

    // A clean restart (SIGTERM to Janus, as a service manager does).
    let (_, before) = publish_state(&node);
    let ev = h.restart_janus("-USR1");
    let took = wait_published(
        &mut node,
        &h,
        before,
        "publishing again after Janus restarted",
    );
    println!(
        "[janus] Janus restarted ({ev}); the node published again {} ms after it was back",
        took.as_millis()
    );
    let v = view(&h, WINDOW_S);
    check_view(&v, "after the restart");

    // A crash (SIGKILL to Janus: no goodbye to its peers), started again at once.
    let (_, before) = publish_state(&node);
    let ev = h.restart_janus("-USR2");
    let took = wait_published(
        &mut node,
        &h,
        before,
        "publishing again after Janus crashed",
    );
    println!(
        "[janus] Janus killed and started again ({ev}); the node published again {} ms after it \
         was back",
        took.as_millis()
    );
    let v = view(&h, 5);
    check_view(&v, "after the crash");

    node.assert_alive();
    let (connected, total) = publish_state(&node);
    assert_eq!(connected, 1.0);
    assert!(total >= 3.0, "sessions_total {total}, want >= 3");
    let (clean, out) = node.stop(Duration::from_secs(10));
    assert!(
        clean,
        "the node did not stop on SIGTERM:\n{}",
        tail(&out, 4000)
    );
    // Shutdown DELETEs the session at the WHIP front end, which destroys it in Janus.
    crate::control::wait_for(
        "the shutdown DELETE at the WHIP front end",
        Duration::from_secs(5),
        || h.output().contains("deleted (janus session"),
    );
    println!("[janus] wall time {:.1} s", t0.elapsed().as_secs_f64());
}
