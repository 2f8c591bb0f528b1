//! Hostile outside parties, and a broken chain side, against a streaming node:
//!
//! - a CometBFT RPC server (`tests/e2e/hostile_rpc.py`) that pads every answer and announces a
//!   10 000-validator set in 100 pages of 4 MiB, chunked: the node's resident memory stays under
//!   64 MiB the whole time (sampled from `/proc/PID/status`), an aiortc viewer decodes at the
//!   normal rate meanwhile, and `/healthz` names the refused answer in `chain_error`;
//! - WHIP publishing through a 307 to another origin (another port on loopback): the configured
//!   endpoint gets the bearer token, the other origin never does (the servers here record what
//!   they received), and a session `Location` on a third origin gets no DELETE;
//! - a chain configured over a data dir whose `node.redb` is random bytes, or whose `node.key` is
//!   not a key: the video plays (aiortc decodes), `/healthz`, `sutantra status` and `sutantra
//!   check` report the problem;
//! - no chain: no `node.key`, `node.redb` or pid file appears in the data dir.
//!
//! (The data dir is still where the control socket lives by default, so a node without a chain
//! still needs it writable; a read-only data dir is not a case here.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients;
use crate::cometbft::spawn_rpc_script;
use crate::control::cli;
use crate::node::{Node, raw_request, tail};

/// The recorded kvstore block at height 10 (`tests/data/cometbft/kvstore_v0_38`).
const KVSTORE_HASH_10: &str = "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE";
/// The node's resident memory must stay under this during the attack.
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// `hostile_rpc.py` as a child process; killed on drop.
struct HostileRpc {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl HostileRpc {
    fn start(extra: &[&str]) -> HostileRpc {
        let (child, stderr, lines) = spawn_rpc_script("hostile_rpc.py", extra);
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_default();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "hostile_rpc.py printed {line:?}; stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                )
            });
        HostileRpc {
            child,
            port,
            stderr,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> Value {
        let r = raw_request(&self.url(), "GET", "/_control/stats", &[], None)
            .unwrap_or_else(|e| panic!("hostile_rpc stats: {e}"));
        serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("stats not JSON ({e}): {}", r.body))
    }
}

impl Drop for HostileRpc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- hostile_rpc.py stderr ---\n{}\n--- end ---",
                tail(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()), 8000)
            );
        }
    }
}

/// A `[chain]` on the recorded kvstore chain (trust root: its block 10) with `rpc`.
fn chain_toml(rpc: &str, max_response_bytes: u64, poll_ms: u64) -> String {
    format!(
        "[chain]\nchain_id = \"dockerchain\"\nrpc = [\"{rpc}\"]\ntrust_height = 10\n\
         trust_hash = \"{KVSTORE_HASH_10}\"\ntrusting_period_s = {}\npoll_interval_ms = {poll_ms}\n\
         max_response_bytes = {max_response_bytes}\n\n[attest]\nsegment_ms = 1000\n",
        36_000u64 * 86_400
    )
}

/// A working dir with `data/` (the node's) and the config file.
struct Dirs {
    _root: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
}

fn dirs(toml: &str) -> Dirs {
    let root = tempfile::Builder::new()
        .prefix("sutantra-hostile-")
        .tempdir()
        .expect("temp dir");
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir data");
    let config = root.path().join("sutantra.toml");
    std::fs::write(&config, toml).expect("write config");
    Dirs {
        _root: root,
        data,
        config,
    }
}

fn start_with_config(d: &Dirs) -> Node {
    let cfg = d.config.to_str().expect("utf-8 path");
    Node::start_in(&d.data, &["--config", cfg])
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Samples `pid`'s RSS every 50 ms until dropped; keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let (peak, samples, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (p, n, s) = (peak.clone(), samples.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    p.fetch_max(kib, Ordering::Relaxed);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            peak,
            samples,
            stop,
            thread: Some(thread),
        }
    }

    fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (self.peak_kib(), self.samples.load(Ordering::Relaxed))
    }
}

/// An aiortc viewer for `seconds`: asserts it decoded at least `min_frames` 640x480 frames.
fn viewer_decodes(node: &Node, seconds: u32, min_frames: u64) -> Value {
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", &seconds.to_string()],
        Duration::from_secs(u64::from(seconds) + 60),
    );
    let v = run.json();
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= min_frames,
        "the viewer decoded {frames} frames in {seconds} s, want >= {min_frames}: {v}"
    );
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(480))
    );
    v
}

/// Waits until `/healthz` has a `chain_error` containing every one of `words`.
fn wait_chain_error(node: &Node, words: &[&str], timeout: Duration) -> String {
    let h = node.wait_healthz(&format!("chain_error with {words:?}"), timeout, |h| {
        h["chain_error"]
            .as_str()
            .is_some_and(|e| words.iter().all(|w| e.contains(w)))
    });
    assert_eq!(h["status"], "ok", "the video is not ok: {h}");
    h["chain_error"].as_str().unwrap_or_default().to_string()
}

// --- a hostile RPC server -----------------------------------------------------------------------

#[test]
fn a_padded_rpc_server_cannot_grow_the_node_or_stop_its_video() {
    // 100 pages of 4 MiB (10 000 validators, each padded with an array of zeros), chunked.
    let rpc = HostileRpc::start(&["--pages", "100", "--page-mib", "4"]);
    // A generous budget (32 MiB for all pages of a set): each poll the node streams 8 pages of
    // padding through its parser before it refuses the set.
    let d = dirs(&chain_toml(&rpc.url(), 32 << 20, 1000));
    let node = start_with_config(&d);
    let pid = node.pid();
    let before = rss_kib(pid).expect("the node's VmRSS");
    let sampler = RssSampler::start(pid);
    // The attack is on: the node reads validator pages.
    let t0 = Instant::now();
    while rpc.stats()["pages_served"].as_u64().unwrap_or(0) < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the node asked for no validator pages: {}\n{}",
            rpc.stats(),
            tail(&node.output(), 3000)
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Video at the normal rate through the attack.
    let v = viewer_decodes(&node, 10, 270);
    let error = wait_chain_error(&node, &["max_response_bytes"], Duration::from_secs(30));
    let stats = rpc.stats();
    let (peak, samples) = sampler.finish();
    let served_mib = stats["bytes_sent"].as_u64().unwrap_or(0) / (1 << 20);
    println!(
        "hostile RPC: {} pages served, {served_mib} MiB sent; node VmRSS {} MiB before, peak {} \
         MiB over {samples} samples; viewer {} frames ({} fps); chain_error: {error}",
        stats["pages_served"],
        before / 1024,
        peak / 1024,
        v["frames"],
        v["fps"],
    );
    assert!(samples >= 50, "only {samples} RSS samples");
    assert!(
        served_mib >= 64,
        "the attack did not happen at scale: {served_mib} MiB sent: {stats}"
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "the node's VmRSS reached {} MiB (limit {} MiB) under the attack",
        peak / 1024,
        RSS_LIMIT_KIB / 1024
    );
    assert!(
        error.contains("pages 1 to") || error.contains("larger than"),
        "{error}"
    );
}

// --- WHIP: the token stays with its origin ------------------------------------------------------

/// What a recording server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// A plain HTTP server on a free loopback port that records every request and answers with
/// `respond(index, method, path)`: (status, headers, body).
fn recording_server(
    respond: impl Fn(usize, &str, &str) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("/").to_string();
            let (mut authorization, mut length) = (None, 0usize);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "authorization" => authorization = Some(v.trim().to_string()),
                        "content-length" => length = v.trim().parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            let mut body = vec![0u8; length.min(1 << 20)];
            let _ = reader.read_exact(&mut body);
            let (status, headers, body) = respond(i, &method, &path);
            seen.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
                method,
                path,
                authorization,
            });
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
    });
    (base, log)
}

fn seen(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[test]
fn whip_never_sends_the_token_to_another_origin() {
    // C: a third origin. B: the other origin the endpoint redirects to; its first session's
    // Location points at C, the next ones at itself. A: the configured endpoint, 307 to B.
    let (c, c_log) = recording_server(|_, _, _| (200, vec![], String::new()));
    let posts = Arc::new(AtomicU64::new(0));
    let (b, b_log) = {
        let c_resource = format!("{c}/stolen/1");
        let posts = posts.clone();
        recording_server(move |_, method, _| {
            if method != "POST" {
                return (200, vec![], String::new());
            }
            let n = posts.fetch_add(1, Ordering::SeqCst);
            let location = if n == 0 {
                c_resource.clone()
            } else {
                "/whip/session-2".to_string()
            };
            // An SDP answer the node cannot use: the session fails and is DELETEd (where that
            // is allowed), then published again after the backoff.
            (201, vec![("Location".into(), location)], "v=0\r\n".into())
        })
    };
    let b_whip = format!("{b}/whip");
    let (a, a_log) = recording_server(move |_, _, _| {
        (
            307,
            vec![("Location".into(), b_whip.clone())],
            String::new(),
        )
    });
    let toml = format!("[[publish]]\nurl = \"{a}/whip\"\ntoken = \"s3cret\"\n");
    let d = dirs(&toml);
    let cfg = d.config.to_str().expect("utf-8 path");
    let node = Node::start_in(&d.data, &["--config", cfg, "--ice-server", "none"]);
    // Two sessions at B (the retry comes after the backoff, about 1 s), and B's DELETE of the
    // second one (its Location is B's own).
    let t0 = Instant::now();
    loop {
        let b_seen = seen(&b_log);
        let posts = b_seen.iter().filter(|s| s.method == "POST").count();
        let deletes = b_seen.iter().filter(|s| s.method == "DELETE").count();
        if posts >= 2 && deletes >= 1 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "waited for 2 POSTs and a DELETE at the other origin: {b_seen:?}\n{}",
            tail(&node.output(), 4000)
        );
        thread::sleep(Duration::from_millis(50));
    }
    let (a_seen, b_seen, c_seen) = (seen(&a_log), seen(&b_log), seen(&c_log));
    println!("configured origin A saw {a_seen:?}");
    println!("other origin B saw {b_seen:?}");
    println!("third origin C saw {c_seen:?}");
    assert!(
        a_seen.len() >= 2
            && a_seen
                .iter()
                .all(|s| s.method == "POST" && s.authorization.as_deref() == Some("Bearer s3cret")),
        "the configured origin gets the POSTs with the token: {a_seen:?}"
    );
    assert!(
        b_seen.iter().all(|s| s.authorization.is_none()),
        "another origin received the Authorization header: {b_seen:?}"
    );
    assert!(
        b_seen
            .iter()
            .any(|s| s.method == "DELETE" && s.path == "/whip/session-2"),
        "{b_seen:?}"
    );
    assert!(
        c_seen.is_empty(),
        "a Location on a third origin was used: {c_seen:?}"
    );
    let out = node.output();
    assert!(
        out.contains("not sent there") && out.contains("another origin"),
        "the node does not say why: {}",
        tail(&out, 4000)
    );
}

// --- the chain side cannot take the video down --------------------------------------------------

/// A node with a `[chain]` (its RPC unreachable) over `d`: it must be healthy (the `Node` helper
/// waits for `/healthz` "ok"), play to a viewer, and report `words` in `/healthz`, `sutantra
/// status` and (if given) the `sutantra check` verdict of `check_name`.
fn broken_chain_side_is_reported(d: &Dirs, words: &[&str], check_name: &str) {
    let node = start_with_config(d);
    let error = wait_chain_error(&node, words, Duration::from_secs(20));
    let v = viewer_decodes(&node, 5, 120);
    let status = cli(&d.data, &["status", "--json"])
        .ok("status --json")
        .json();
    let said = status["chain_error"].as_str().unwrap_or_default();
    assert!(
        words.iter().all(|w| said.contains(w)),
        "sutantra status --json: chain_error {said:?}: {status}"
    );
    let cfg = d.config.to_str().expect("utf-8 path");
    let check = cli(&d.data, &["check", "--json", "--config", cfg]);
    let j = check.json();
    let c = j["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == check_name))
        .cloned()
        .unwrap_or_default();
    assert_eq!(c["verdict"], "FAIL", "sutantra check {check_name}: {j}");
    assert_eq!(check.code, 1, "{j}");
    println!(
        "video {} frames ({} fps); /healthz chain_error: {error}; check {check_name}: {} -> {}",
        v["frames"], v["fps"], c["detail"], c["fix"]
    );
    let (clean, out) = node.stop(Duration::from_secs(15));
    assert!(
        clean,
        "the node did not stop by itself: {}",
        tail(&out, 3000)
    );
}

#[test]
fn a_damaged_store_or_key_does_not_stop_the_video() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    // node.redb: random bytes.
    let d = dirs(&chain_toml(&dead, 4 << 20, 1000));
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let random: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect();
    std::fs::write(d.data.join("node.redb"), &random).expect("write node.redb");
    broken_chain_side_is_reported(&d, &["node.redb", "not running"], "store");
    assert_eq!(
        std::fs::read(d.data.join("node.redb")).expect("node.redb"),
        random,
        "the damaged store was changed"
    );

    // node.key: not a key (mode 0600, so only its content is wrong).
    let d = dirs(&chain_toml(&dead, 4 << 20, 1000));
    let key = d.data.join("node.key");
    std::fs::write(&key, "this is not a key\n").expect("write node.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    broken_chain_side_is_reported(&d, &["node.key", "not a Sutantra node key"], "keys");
    assert!(
        !d.data.join("node.redb").exists(),
        "a store was made although the key is unusable"
    );
}

#[test]
fn without_a_chain_no_key_or_store_is_created() {
    let d = dirs("");
    let node = start_with_config(&d);
    viewer_decodes(&node, 3, 60);
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read the data dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let h = node.healthz();
    assert!(h["chain_error"].is_null(), "{h}");
    let (clean, out) = node.stop(Duration::from_secs(15));
    assert!(clean, "{}", tail(&out, 3000));
    let left = names(&d.data);
    println!("data dir after a run without a chain: {left:?}");
    for f in ["node.key", "node.redb", "node.pid"] {
        assert!(!left.iter().any(|n| n == f), "{f} was created: {left:?}");
    }
    let cfg = d.config.to_str().expect("utf-8 path");
    let j = cli(&d.data, &["check", "--json", "--config", cfg]).json();
    for name in ["keys", "store"] {
        let c = j["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["check"] == name))
            .cloned()
            .unwrap_or_default();
        assert_eq!(c["verdict"], "OK", "{name}: {c}");
    }
    assert!(
        !names(&d.data)
            .iter()
            .any(|n| n == "node.key" || n == "node.redb"),
        "`sutantra check` created a key or a store"
    );
}
