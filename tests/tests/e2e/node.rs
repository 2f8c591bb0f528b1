//! A running `sutantra run` under test, and raw HTTP to it.
//!
//! `Node::start` spawns the binary named by `SUTANTRA_BIN` (default
//! `<workspace>/target/release/sutantra`) on a free loopback port with a temporary data dir, and
//! returns once `GET /healthz` says `"status": "ok"` (polled, never a fixed sleep). Dropping the
//! `Node` kills the process; if the test is failing (panicking), the node's output is printed.
//!
//! Nodes run one at a time (a global lock held by each `Node`): on a 2-core machine two encoders
//! plus decoding clients at once starve each other and make frame-rate checks flaky.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a node may take from spawn to `/healthz` status "ok".
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one raw HTTP request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of the node's stderr to keep for a failure report.
const STDERR_KEEP: usize = 64 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// The node binary: `SUTANTRA_BIN` (relative paths are taken from the workspace root), else the
/// release build in the target dir.
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("SUTANTRA_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("release/sutantra"),
    };
    let path = if path.is_relative() {
        workspace().join(path)
    } else {
        path
    };
    assert!(
        path.is_file(),
        "node binary {} not found: build it with `cargo build --release -p sutantra` or set \
         SUTANTRA_BIN (scripts/test.sh does both)",
        path.display()
    );
    path
}

/// A free TCP port on loopback: bind port 0, read the port, release it.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("local addr of a bound listener")
        .port()
}

/// Collects a child's pipe on a thread so the pipe never fills; keeps the last `STDERR_KEEP` bytes.
fn drain(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&buf[..n]);
            if out.len() > 2 * STDERR_KEEP {
                let cut = out.len() - STDERR_KEEP;
                out.drain(..cut);
            }
        }
    });
}

/// A reply to a raw request.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// The node's process; dropping it kills the process (and reports its output if a test failed).
#[derive(Debug)]
struct Proc {
    child: Child,
    port: u16,
    output: Arc<Mutex<Vec<u8>>>,
    /// The temporary data dir (None when the test supplied its own, to keep across restarts).
    _data_dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Did it end before we kill it? (A crash, or a signal from outside the test.)
        let ended = match self.child.try_wait() {
            Ok(Some(status)) => format!(" - it had already exited by itself: {status}"),
            _ => String::new(),
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "--- sutantra output (port {}){ended} ---\n{}\n--- end ---",
                self.port,
                String::from_utf8_lossy(&out)
            );
        }
    }
}

/// A running node. Dropping it kills the process, then lets the next test start its node.
#[derive(Debug)]
pub struct Node {
    proc: Proc,
    pub port: u16,
    pub base: String,
    /// The one-node-at-a-time lock; `None` for a node started beside another one (a relay
    /// chain), which holds it.
    _serial: Option<MutexGuard<'static, ()>>,
}

impl Node {
    /// Starts a node with the test pattern at 640x480, 30 fps, plus `extra` arguments (later
    /// flags win), and waits until it is healthy.
    pub fn start(extra: &[&str]) -> Node {
        Node::start_inner(None, extra)
    }

    /// Like `start`, with the data dir `data_dir` (kept after the node ends, so a later node can
    /// resume from it).
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Node {
        Node::start_inner(Some(data_dir), extra)
    }

    /// Like `start_in`, without the test-pattern 640x480 flags: the source and its size come
    /// from `extra` or the node's `--config` file (which flags would override).
    pub fn start_with_file(data_dir: &Path, extra: &[&str]) -> Node {
        Node::start_full(Some(data_dir), false, extra)
    }

    /// Like `start`, with environment variables set for the node's process (e.g. a preloaded
    /// library that moves its wall clock).
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Node {
        Node::start_full_env(None, true, extra, env)
    }

    fn start_inner(keep_dir: Option<&Path>, extra: &[&str]) -> Node {
        Node::start_full(keep_dir, true, extra)
    }

    fn start_full(keep_dir: Option<&Path>, source_flags: bool, extra: &[&str]) -> Node {
        Node::start_full_env(keep_dir, source_flags, extra, &[])
    }

    /// One of several nodes that talk to each other (relay chains), under the one-node lock the
    /// caller holds (`hold_node_lock`) for all of them. With `port`, it listens there (a node
    /// restarted on the port its relays know); without `source_flags`, the source comes from
    /// `extra` alone.
    pub fn start_beside(
        _lock: &MutexGuard<'static, ()>,
        port: Option<u16>,
        source_flags: bool,
        extra: &[&str],
    ) -> Node {
        Node::launch(None, source_flags, extra, &[], None, port)
    }

    fn start_full_env(
        keep_dir: Option<&Path>,
        source_flags: bool,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Node {
        // A failed test poisons the lock; the next test can still run.
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        Node::launch(keep_dir, source_flags, extra, env, Some(serial), None)
    }

    fn launch(
        keep_dir: Option<&Path>,
        source_flags: bool,
        extra: &[&str],
        env: &[(&str, &str)],
        serial: Option<MutexGuard<'static, ()>>,
        fixed_port: Option<u16>,
    ) -> Node {
        let bin = binary();
        let mut last_failure = String::new();
        // The port is free when picked but another process may take it before the node binds it:
        // if the node exits during startup, try again with a new port.
        for _attempt in 0..3 {
            let port = fixed_port.unwrap_or_else(free_port);
            let data_dir = match keep_dir {
                Some(_) => None,
                None => Some(
                    tempfile::Builder::new()
                        .prefix("sutantra-e2e-")
                        .tempdir()
                        .expect("create a temp data dir"),
                ),
            };
            let data_path = match (&data_dir, keep_dir) {
                (Some(t), _) => t.path().to_path_buf(),
                (None, Some(p)) => p.to_path_buf(),
                (None, None) => unreachable!("a data dir is either given or temporary"),
            };
            let listen = format!("127.0.0.1:{port}");
            let mut cmd = Command::new(&bin);
            cmd.args(["run", "--listen", &listen, "--data-dir"])
                .arg(&data_path);
            if source_flags {
                cmd.args([
                    "--source",
                    "test-pattern",
                    "--width",
                    "640",
                    "--height",
                    "480",
                ])
                .args(["--fps", "30"]);
            }
            cmd.args(extra)
                .env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let output = Arc::new(Mutex::new(Vec::new()));
            if let Some(out) = child.stdout.take() {
                drain(out, output.clone());
            }
            if let Some(err) = child.stderr.take() {
                drain(err, output.clone());
            }
            let mut proc = Proc {
                child,
                port,
                output,
                _data_dir: data_dir,
            };
            match wait_ready(&mut proc, &format!("http://{listen}")) {
                Ok(()) => {
                    return Node {
                        proc,
                        port,
                        base: format!("http://{listen}"),
                        _serial: serial,
                    };
                }
                Err(Startup::Exited(why)) => {
                    last_failure =
                        format!("{why}\n--- node output ---\n{}", output_of(&proc.output));
                }
                // The node's output is printed when `proc` drops during the panic.
                Err(Startup::NotReady(why)) => {
                    panic!("node on port {port} not healthy within {READY_TIMEOUT:?}: {why}")
                }
            }
        }
        panic!("the node exited during startup three times; last time: {last_failure}");
    }

    /// Everything the node printed so far (stdout and stderr, the last 64 KiB or so).
    pub fn output(&self) -> String {
        output_of(&self.proc.output)
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A raw request. `body` None sends no body.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ureq::Error> {
        raw_request(&self.base, method, path, headers, body)
    }

    /// A raw request that must get an answer.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: no HTTP answer: {e}"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// `GET /healthz` as JSON.
    pub fn healthz(&self) -> Value {
        let r = self.get("/healthz");
        assert_eq!(r.status, 200, "GET /healthz: {}", r.body);
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("/healthz is not JSON ({e}): {}", r.body))
    }

    /// Polls `/healthz` until `cond` holds; panics with the last body after `timeout`.
    pub fn wait_healthz(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            // 503 ("stalled", "no_signal") is a state to wait through, with the same JSON.
            let r = self.get("/healthz");
            assert!(
                r.status == 200 || r.status == 503,
                "GET /healthz: {} {}",
                r.status,
                r.body
            );
            let h: Value = serde_json::from_str(&r.body)
                .unwrap_or_else(|e| panic!("/healthz is not JSON ({e}): {}", r.body));
            if cond(&h) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; last /healthz: {h}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }

    /// `kill -9`: ends the node at once (no shutdown path runs); returns its output.
    pub fn kill9(mut self) -> String {
        let _ = self.proc.child.kill(); // SIGKILL on Unix
        let _ = self.proc.child.wait();
        self.output()
    }

    /// Asks the node to stop (SIGTERM), waits up to `timeout`, then SIGKILLs it. Returns whether
    /// it ended by itself, and its output.
    pub fn stop(mut self, timeout: Duration) -> (bool, String) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        let by_itself = loop {
            match self.proc.child.try_wait() {
                Ok(Some(_)) => break true,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => break false,
            }
        };
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        (by_itself, self.output())
    }

    /// `GET /metrics` as `name -> value` (samples with labels are summed under their name).
    pub fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
        let mut out = std::collections::HashMap::new();
        for line in r.body.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, rest) = match line.find('{') {
                Some(i) => (&line[..i], line.rfind('}').map_or("", |j| &line[j + 1..])),
                None => line.split_once(char::is_whitespace).unwrap_or((line, "")),
            };
            if let Some(v) = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                *out.entry(name.to_string()).or_insert(0.0) += v;
            }
        }
        out
    }

    /// One metric's value (None when the node does not export it).
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics().get(name).copied()
    }

    /// Polls `/metrics` until `cond(value of name)` holds (a missing metric counts as absent);
    /// panics after `timeout` with the last value and the node's output tail.
    pub fn wait_metric(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        cond: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(name);
            if let Some(v) = v.filter(|v| cond(*v)) {
                return v;
            }
            if Instant::now() > deadline {
                let out = self.output();
                let tail = tail(&out, 4000);
                panic!(
                    "waited {timeout:?} for {what}; last {name} = {v:?}\n--- node output tail ---\n{tail}"
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics (with the node's output) if the node has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.proc.child.try_wait() {
            panic!("the node exited with {status}");
        }
    }
}

enum Startup {
    Exited(String),
    NotReady(String),
}

/// The last `n` bytes of `s` or a little more (cut on a character boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    &s[start..]
}

fn output_of(sink: &Mutex<Vec<u8>>) -> String {
    let out = sink.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&out).into_owned()
}

/// A raw request to `base` + `path`. `body` None sends no body.
pub fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Reply, ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .max_redirects(0)
        .build()
        .into();
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let reply = match body {
        Some(b) => agent.run(builder.body(b).expect("a valid request")),
        None => agent.run(builder.body(()).expect("a valid request")),
    }?;
    let status = reply.status().as_u16();
    let headers = reply.headers().clone();
    let body = reply.into_body().read_to_string()?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Polls `/healthz` until status is "ok", or the process exits, or `READY_TIMEOUT` passes.
fn wait_ready(proc: &mut Proc, base: &str) -> Result<(), Startup> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(Startup::Exited(format!(
                "the node exited with {status} during startup"
            )));
        }
        let last = match raw_request(base, "GET", "/healthz", &[], None) {
            Ok(r) if r.status == 200 => match serde_json::from_str::<Value>(&r.body) {
                Ok(v) if v["status"] == "ok" => return Ok(()),
                Ok(v) => format!("healthz: {v}"),
                Err(e) => format!("healthz is not JSON ({e}): {}", r.body),
            },
            Ok(r) => format!("healthz answered {}: {}", r.status, r.body),
            Err(e) => format!("healthz: {e}"),
        };
        if Instant::now() > deadline {
            return Err(Startup::NotReady(last));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Holds the one-node-at-a-time lock for a test that runs the binary itself (a node that
/// `Node::start` cannot wait for, such as one serving HTTPS). Drop it when the node has ended.
pub fn hold_node_lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
