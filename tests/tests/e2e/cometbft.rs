//! The fake CometBFT RPC server (`tests/e2e/fake_cometbft.py`, independent of the node's code) as
//! a process under test control, and the `sutantra` CLI run as a one-shot command.
//!
//! `FakeRpc::start` spawns the server on a free loopback port (it prints `listening on PORT` and
//! `control on PORT`); the control port stays up while the RPC port is "down". Dropping it kills
//! the process (and prints its stderr if the test is failing).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients::{e2e_dir, python};
use crate::node::{binary, raw_request};

/// The upstream CometBFT vectors in the repository (`tests/data/cometbft`), or `COMETBFT_VECTORS`.
pub fn vectors() -> std::path::PathBuf {
    let dir = std::env::var_os("COMETBFT_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::node::workspace().join("tests/data/cometbft"));
    assert!(
        dir.join("single_step").is_dir(),
        "the CometBFT vectors are not at {} (set COMETBFT_VECTORS)",
        dir.display()
    );
    dir
}

/// Starts the Python RPC server `script` (in `tests/e2e`) on the CometBFT vectors with `args`:
/// the child, its stderr (the last 128 KiB or more, for failure reports) and its stdout lines.
pub fn spawn_rpc_script(
    script: &str,
    args: &[&str],
) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut child = Command::new(python())
        .arg(e2e_dir().join(script))
        .arg("--vectors")
        .arg(vectors())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let stderr = Arc::new(Mutex::new(String::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > 256 * 1024 {
                    let cut = s.len() - 128 * 1024;
                    let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(0);
                    s.drain(..cut);
                }
            }
        });
    }
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, stderr, rx)
}

#[derive(Debug)]
pub struct FakeRpc {
    child: Child,
    pub port: u16,
    pub control_port: u16,
    stderr: Arc<Mutex<String>>,
}

impl FakeRpc {
    /// Starts `fake_cometbft.py ARGS` (e.g. `--generate 11 --genesis-time T`).
    pub fn start(args: &[&str]) -> FakeRpc {
        let (child, stderr, rx) = spawn_rpc_script("fake_cometbft.py", args);
        let line = |what: &str| -> u16 {
            let l = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| {
                    panic!(
                        "fake_cometbft.py printed no `{what} PORT` ({e}); stderr:\n{}",
                        stderr.lock().unwrap_or_else(|e| e.into_inner())
                    )
                });
            l.strip_prefix(what)
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("fake_cometbft.py: expected `{what} PORT`, got {l:?}"))
        };
        let port = line("listening on");
        let control_port = line("control on");
        FakeRpc {
            child,
            port,
            control_port,
            stderr,
        }
    }

    /// A generated chain of `n` blocks (`validators` per set, half rotating every 3 heights) whose
    /// genesis is `genesis` (unix seconds): two servers with equal arguments serve the same chain.
    pub fn generated(n: u64, validators: u32, genesis: u64) -> FakeRpc {
        FakeRpc::start(&[
            "--generate",
            &n.to_string(),
            "--validators",
            &validators.to_string(),
            "--genesis-time",
            &genesis.to_string(),
        ])
    }

    /// The RPC base URL for the node's config.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /_control/PATH` on the control port, as JSON.
    pub fn control(&self, path: &str) -> Value {
        let base = format!("http://127.0.0.1:{}", self.control_port);
        let r = raw_request(&base, "GET", &format!("/_control/{path}"), &[], None)
            .unwrap_or_else(|e| panic!("fake_cometbft control {path}: {e}"));
        assert_eq!(r.status, 200, "fake_cometbft control {path}: {}", r.body);
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("fake_cometbft control {path}: not JSON ({e}): {}", r.body))
    }

    /// `GET PATH` on the RPC port (as a client of the chain would), as JSON.
    pub fn rpc(&self, path: &str) -> Value {
        let r = raw_request(&self.url(), "GET", path, &[], None)
            .unwrap_or_else(|e| panic!("fake_cometbft {path}: {e}"));
        serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("fake_cometbft {path}: not JSON ({e}): {}", r.body))
    }

    pub fn set_mode(&self, mode: &str) {
        self.control(&format!("mode?value={mode}"));
    }

    /// The block id hash at `height` (upper-case hex), as served now.
    pub fn hash(&self, height: u64) -> String {
        let info = self.control("info");
        info["hashes"][height.to_string()]
            .as_str()
            .unwrap_or_else(|| panic!("no height {height} in {info}"))
            .to_string()
    }

    pub fn chain_id(&self) -> String {
        self.control("info")["chain_id"]
            .as_str()
            .expect("info.chain_id")
            .to_string()
    }

    /// Every RPC request so far as `/path?query`; `clear` empties the log.
    pub fn requests(&self, clear: bool) -> Vec<String> {
        let v = self.control(if clear {
            "requests?clear=1"
        } else {
            "requests"
        });
        strings(&v["requests"])
    }

    /// (accepted, rejected) transactions, hex.
    pub fn txs(&self) -> (Vec<String>, Vec<String>) {
        let v = self.control("txs");
        (strings(&v["accepted"]), strings(&v["rejected"]))
    }

    /// A light block as JSON files take it: `signed_header`, `validator_set`, `next_validator_set`.
    pub fn light_block(&self, height: u64) -> Value {
        let commit = self.rpc(&format!("/commit?height={height}"));
        let sh = commit["result"]["signed_header"].clone();
        assert!(sh.is_object(), "/commit?height={height}: {commit}");
        let vals = |h: u64| -> Value {
            let mut out = Vec::new();
            for page in 1.. {
                let v = self.rpc(&format!("/validators?height={h}&page={page}&per_page=100"));
                let r = &v["result"];
                out.extend(r["validators"].as_array().cloned().unwrap_or_default());
                let total: usize = r["total"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                if out.len() >= total {
                    break;
                }
            }
            serde_json::json!({ "validators": out })
        };
        serde_json::json!({
            "signed_header": sh,
            "validator_set": vals(height),
            "next_validator_set": vals(height + 1),
        })
    }

    /// Polls until `cond(requests so far)` holds.
    pub fn wait_requests(&self, what: &str, timeout: Duration, cond: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.requests(false);
            if cond(&r) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {what}; requests: {:?}",
                &r[r.len().saturating_sub(30)..]
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for FakeRpc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let err = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
            if !err.trim().is_empty() {
                eprintln!(
                    "--- fake_cometbft.py stderr (port {}) ---\n{}\n--- end ---",
                    self.port,
                    crate::node::tail(&err, 8000)
                );
            }
        }
    }
}

/// What a `sutantra` CLI command printed, and its exit code.
#[derive(Debug)]
pub struct Cli {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\nstdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with everything printed unless the command exited 0.
    pub fn ok(self, what: &str) -> Cli {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `sutantra ARGS` to the end (at most 60 s).
pub fn sutantra(args: &[&str]) -> Cli {
    sutantra_os(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>())
}

/// Runs `sutantra ARGS` with a path argument list.
pub fn sutantra_os(args: &[&std::ffi::OsStr]) -> Cli {
    let bin = binary();
    let mut child = Command::new(&bin)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let run = crate::clients::finish_raw(&mut child, Duration::from_secs(60), "sutantra CLI");
    Cli {
        code: run.0,
        stdout: run.1,
        stderr: run.2,
    }
}

/// `sutantra SUBCOMMAND... --data-dir DIR` (plus `extra`).
pub fn sutantra_in(dir: &Path, args: &[&str]) -> Cli {
    let mut v: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    v.push(std::ffi::OsStr::new("--data-dir"));
    v.push(dir.as_os_str());
    sutantra_os(&v)
}
