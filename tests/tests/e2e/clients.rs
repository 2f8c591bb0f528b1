//! The independent clients: the aiortc WHEP viewer (`tests/e2e/whep_client.py`, run with the
//! repo's `.venv`) and the Playwright + Chromium page viewer (`tests/e2e/browser_view.mjs`).
//!
//! If their runtime is missing these helpers FAIL the test and say to run `scripts/setup.sh`:
//! an end-to-end test that cannot run must never pass quietly.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::workspace;

/// What a client printed, and how it ended.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout's last line as JSON (the clients print one JSON document last).
    pub fn json(&self) -> Value {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!(
                "client printed no JSON ({e})\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn e2e_dir() -> PathBuf {
    workspace().join("tests/e2e")
}

pub fn python() -> PathBuf {
    let py = workspace().join(".venv/bin/python3");
    assert!(
        py.is_file(),
        "{} is missing: run `scripts/setup.sh` (as root) to create the venv with aiortc",
        py.display()
    );
    py
}

fn node_js() -> (String, PathBuf) {
    let pw = e2e_dir().join("node_modules/playwright-core/package.json");
    assert!(
        pw.is_file(),
        "{} is missing: run `scripts/setup.sh` (as root) to install playwright-core",
        pw.display()
    );
    assert!(
        PathBuf::from("/usr/bin/chromium").is_file() || std::env::var_os("CHROMIUM").is_some(),
        "/usr/bin/chromium is missing: run `scripts/setup.sh` (as root) to install it"
    );
    ("node".to_string(), e2e_dir().join("browser_view.mjs"))
}

/// Starts the aiortc viewer in the background (`--url` and `--json` are added).
pub fn spawn_whep(whep_url: &str, args: &[&str]) -> Child {
    let mut cmd = Command::new(python());
    cmd.arg(e2e_dir().join("whep_client.py"))
        .args(["--url", whep_url, "--json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("start whep_client.py: {e}"))
}

/// Runs the aiortc viewer to the end (at most `timeout`).
pub fn whep(whep_url: &str, args: &[&str], timeout: Duration) -> Run {
    finish(spawn_whep(whep_url, args), timeout, "whep_client.py")
}

/// An SDP offer made by aiortc (its host candidate on 127.0.0.1), for raw POSTs.
pub fn aiortc_offer(whep_url: &str) -> String {
    let run = whep(whep_url, &["--offer-only"], Duration::from_secs(60));
    assert!(
        run.success && run.stdout.starts_with("v=0"),
        "whep_client.py --offer-only failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// Runs the Playwright page viewer to the end (at most `timeout`).
pub fn browser(page_url: &str, args: &[&str], timeout: Duration) -> Run {
    let (node, script) = node_js();
    let mut cmd = Command::new(node);
    cmd.arg(script)
        .arg(page_url)
        .args(args)
        .current_dir(e2e_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!("start `node browser_view.mjs` (is Node.js installed? run scripts/setup.sh): {e}")
    });
    finish(child, timeout, "browser_view.mjs")
}

/// Waits for a client with a deadline; kills it when the deadline passes.
pub fn finish(mut child: Child, timeout: Duration, name: &str) -> Run {
    let (status, stdout, stderr) = wait_output(&mut child, timeout, name);
    Run {
        success: status.success(),
        stdout,
        stderr,
    }
}

/// Waits for `child` with a deadline (killing it when the deadline passes, which fails the
/// test); returns its status, stdout and stderr.
fn wait_output(
    child: &mut Child,
    timeout: Duration,
    name: &str,
) -> (std::process::ExitStatus, String, String) {
    let out = collect(child.stdout.take());
    let err = collect(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                panic!("{name} did not finish within {timeout:?}; stderr:\n{stderr}");
            }
            Err(e) => panic!("wait for {name}: {e}"),
        }
    };
    (
        status,
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Waits for a command with a deadline (killing it when the deadline passes, which fails the
/// test); returns its exit code (None: killed by a signal), stdout and stderr.
pub fn finish_raw(
    child: &mut Child,
    timeout: Duration,
    name: &str,
) -> (Option<i32>, String, String) {
    let (status, stdout, stderr) = wait_output(child, timeout, name);
    (status.code(), stdout, stderr)
}
