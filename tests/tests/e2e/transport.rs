//! The HTTP transport: connection caps and header timeouts under a slowloris flood, accept()
//! failing with EMFILE without stopping the server, and HTTPS (`--tls-cert`/`--tls-key`):
//! `/healthz`, the page in Chromium and the aiortc viewer over https, a mismatched pair refused
//! at start with exit 2, and SIGHUP swapping the certificate.
//!
//! The certificates are made here with the `openssl` command (installed by `scripts/setup.sh`);
//! https requests go through `curl -k`, the served certificate is read with `openssl s_client`.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients;
use crate::node::{Node, binary, hold_node_lock, tail};

/// Connections the slowloris client keeps trying to hold.
const SLOWLORIS_CONNECTIONS: usize = 1500;
/// How long it keeps them.
const SLOWLORIS_FOR: Duration = Duration::from_secs(10);

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The soft and hard "Max open files" of `pid`.
fn nofile_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no Max open files in /proc/{pid}/limits:\n{limits}"));
    let mut v = line["Max open files".len()..].split_whitespace();
    (
        v.next().unwrap_or("").to_string(),
        v.next().unwrap_or("").to_string(),
    )
}

/// Raises this test process's soft RLIMIT_NOFILE to its hard limit; panics if that is still
/// too low for `need` descriptors.
fn raise_own_nofile(need: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read/write one `rlimit` we own.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim),
            0,
            "getrlimit"
        );
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &want),
                0,
                "setrlimit: {}",
                std::io::Error::last_os_error()
            );
            lim.rlim_cur = lim.rlim_max;
        }
    }
    assert!(
        lim.rlim_cur >= need,
        "this test needs {need} open files but the hard limit is {}: raise it (ulimit -Hn)",
        lim.rlim_cur
    );
}

/// Lowers this test process's soft RLIMIT_NOFILE to at most `to` (children inherit it).
fn lower_own_soft_nofile(to: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read/write one `rlimit` we own.
    unsafe {
        assert_eq!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim),
            0,
            "getrlimit"
        );
        lim.rlim_cur = lim.rlim_cur.min(to);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0, "setrlimit");
    }
}

/// A TCP connection to 127.0.0.1:`port` from the local address `from` (127.0.0.2 plays a
/// client on another address).
pub fn connect_from(from: &str, port: u16) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().expect("address");
    sock.bind(&local.into())?;
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    sock.connect_timeout(&remote.into(), Duration::from_secs(2))?;
    Ok(sock.into())
}

/// What the slowloris client saw.
#[derive(Debug, Default)]
struct Attack {
    connects: usize,
    connect_errors: usize,
    /// Closed by the node (refused at once, or timed out).
    closed_by_node: usize,
    /// Answered by the node: must stay 0, the request never ends.
    answered: usize,
    /// Most connections open at once on the client's side.
    most_open: usize,
}

/// Keeps up to `target` connections from 127.0.0.2, each sending a request that never ends, a
/// byte a second; reconnects those the node closes. Runs for `duration`.
fn slowloris(port: u16, target: usize, duration: Duration) -> Attack {
    let request: &[u8] =
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: ";
    struct Conn {
        s: TcpStream,
        sent: usize,
    }
    let mut conns: Vec<Conn> = Vec::with_capacity(target);
    let mut a = Attack::default();
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let tick = Instant::now();
        while conns.len() < target && Instant::now() < end {
            match connect_from("127.0.0.2", port) {
                Ok(s) => {
                    s.set_nonblocking(true).expect("nonblocking");
                    a.connects += 1;
                    conns.push(Conn { s, sent: 0 });
                }
                Err(_) => {
                    a.connect_errors += 1;
                    break;
                }
            }
        }
        a.most_open = a.most_open.max(conns.len());
        conns.retain_mut(|c| {
            let mut buf = [0u8; 512];
            match c.s.read(&mut buf) {
                Ok(0) => {
                    a.closed_by_node += 1;
                    return false;
                }
                Ok(_) => {
                    a.answered += 1;
                    return false;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    a.closed_by_node += 1;
                    return false;
                }
            }
            let byte = request.get(c.sent).copied().unwrap_or(b'a');
            match c.s.write(&[byte]) {
                Ok(_) => {
                    c.sent += 1;
                    true
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                Err(_) => {
                    a.closed_by_node += 1;
                    false
                }
            }
        });
        let next = tick + Duration::from_secs(1);
        let now = Instant::now();
        if next > now && next < end {
            thread::sleep(next - now);
        }
    }
    a
}

#[test]
fn slowloris_from_one_address_starves_nobody_else() {
    // The node starts with the common soft limit of 1024 (inherited from this process) and must
    // lift it to its hard limit by itself.
    lower_own_soft_nofile(1024);
    let node = Node::start(&[]);
    raise_own_nofile(SLOWLORIS_CONNECTIONS as libc::rlim_t + 512);
    let pid = node.pid();
    let (soft, hard) = nofile_limits(pid);
    assert_eq!(
        soft, hard,
        "the node's RLIMIT_NOFILE soft limit is not its hard limit"
    );
    node.healthz();
    let fds_before = fds(pid);

    let port = node.port;
    let attacker = thread::spawn(move || slowloris(port, SLOWLORIS_CONNECTIONS, SLOWLORIS_FOR));
    // The flood is on: the node refuses connections beyond the per-address cap.
    node.wait_metric(
        "sutantra_http_connections_refused_total",
        "connections from 127.0.0.2 refused at the per-address cap",
        Duration::from_secs(10),
        |v| v >= 100.0,
    );
    let viewer = clients::spawn_whep(
        &node.url("/whep"),
        &[
            "--seconds",
            "4",
            "--expect-width",
            "640",
            "--expect-height",
            "480",
        ],
    );
    // /healthz from 127.0.0.1 answers within a second, every time, all through the flood.
    let mut polls = 0;
    let mut slowest = Duration::ZERO;
    while !attacker.is_finished() {
        let t0 = Instant::now();
        let r = node
            .try_request("GET", "/healthz", &[], None)
            .unwrap_or_else(|e| panic!("/healthz during the flood: {e}"));
        let took = t0.elapsed();
        assert_eq!(r.status, 200, "/healthz during the flood: {}", r.body);
        assert!(
            took < Duration::from_secs(1),
            "/healthz took {took:?} during the flood"
        );
        slowest = slowest.max(took);
        polls += 1;
        thread::sleep(Duration::from_millis(200));
    }
    let attack = attacker.join().expect("the slowloris thread");
    let run = clients::finish(viewer, Duration::from_secs(90), "whep_client.py");
    let v = run.json();
    let refused = node
        .metric("sutantra_http_connections_refused_total")
        .unwrap_or(0.0);
    let timed_out = node
        .metric("sutantra_http_connections_timed_out_total")
        .unwrap_or(0.0);
    println!(
        "slowloris: {attack:?}; node refused {refused}, timed out {timed_out}; /healthz {polls} \
         polls, slowest {slowest:?}; viewer {} frames ({} fps)",
        v["frames"], v["fps"]
    );
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= 60,
        "the viewer decoded {frames} frames in 4 s: {v}"
    );
    assert_eq!(attack.answered, 0, "a request that never ends was answered");
    assert!(
        attack.connects >= SLOWLORIS_CONNECTIONS,
        "the flood opened only {} connections: {attack:?}",
        attack.connects
    );
    assert!(polls >= 10, "only {polls} /healthz polls during the flood");
    // Header timeouts closed the connections the node did take from 127.0.0.2.
    assert!(timed_out >= 1.0, "no connection timed out: {timed_out}");

    // The attacker is gone: the node gives its descriptors back.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let now = fds(pid);
        if now <= fds_before + 8 {
            println!("file descriptors: {fds_before} before the flood, {now} after");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node holds {now} file descriptors 45 s after the flood ({fds_before} before)"
        );
        thread::sleep(Duration::from_millis(250));
    }
    let open = node
        .metric("sutantra_http_connections_open")
        .unwrap_or(-1.0);
    assert!(open <= 2.0, "sutantra_http_connections_open = {open}");
}

// ---- HTTPS ----

fn openssl() -> &'static str {
    assert!(
        Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "the openssl command is missing: run `scripts/setup.sh` (as root)"
    );
    "openssl"
}

/// A self-signed certificate for localhost and 127.0.0.1 (P-256) in `dir`: (cert, key).
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new(openssl())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl req");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// The SHA-256 fingerprint `openssl x509` prints for a PEM certificate read from `stdin_cmd`.
fn fingerprint_of(shell: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{shell} | {} x509 -noout -fingerprint -sha256",
            openssl()
        ))
        .output()
        .expect("run sh");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .split_once('=')
        .map(|(_, f)| f.to_string())
        .unwrap_or_default()
}

fn file_fingerprint(cert: &Path) -> String {
    let f = fingerprint_of(&format!("cat '{}'", cert.display()));
    assert!(!f.is_empty(), "no fingerprint for {}", cert.display());
    f
}

/// A node serving HTTPS, run here because `Node::start` waits over plain HTTP.
struct TlsNode {
    child: Child,
    port: u16,
    output: Arc<Mutex<Vec<u8>>>,
    _data: tempfile::TempDir,
    _lock: MutexGuard<'static, ()>,
}

fn collect(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut out = sink.lock().unwrap_or_else(|e| e.into_inner());
            out.extend_from_slice(&buf[..n]);
            if out.len() > 256 * 1024 {
                let cut = out.len() - 128 * 1024;
                out.drain(..cut);
            }
        }
    });
}

fn text_of(sink: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&sink.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// `sutantra run` on 127.0.0.1:`port` with the test pattern at 640x480, 30 fps, plus `args`.
fn spawn_node(port: u16, data: &Path, args: &[&std::ffi::OsStr]) -> (Child, Arc<Mutex<Vec<u8>>>) {
    spawn_limited(port, data, args, None)
}

/// Like `spawn_node`; with `Some(n)` the node runs with RLIMIT_NOFILE n (soft and hard).
fn spawn_limited(
    port: u16,
    data: &Path,
    args: &[&std::ffi::OsStr],
    nofile: Option<libc::rlim_t>,
) -> (Child, Arc<Mutex<Vec<u8>>>) {
    let mut cmd = Command::new(binary());
    if let Some(n) = nofile {
        use std::os::unix::process::CommandExt;
        let lim = libc::rlimit {
            rlim_cur: n,
            rlim_max: n,
        };
        // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
        // touches nothing of the parent.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd.args([
        "run",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data)
    .args([
        "--source",
        "test-pattern",
        "--width",
        "640",
        "--height",
        "480",
    ])
    .args(["--fps", "30"])
    .args(args)
    .env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the node");
    let output = Arc::new(Mutex::new(Vec::new()));
    if let Some(o) = child.stdout.take() {
        collect(o, output.clone());
    }
    if let Some(e) = child.stderr.take() {
        collect(e, output.clone());
    }
    (child, output)
}

fn tls_args<'a>(cert: &'a Path, key: &'a Path) -> [&'a std::ffi::OsStr; 4] {
    [
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `curl -k`: (HTTP status, body); status 0 when curl got no HTTP answer.
fn curl(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-w", "\n%{http_code}", url])
        .output()
        .expect("run curl (installed by scripts/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

impl TlsNode {
    /// Starts a node serving HTTPS with `cert` and `key`; returns once `/healthz` over https
    /// says "ok".
    fn start(cert: &Path, key: &Path) -> TlsNode {
        let lock = hold_node_lock();
        let mut last = String::new();
        // The port is free when picked but may be taken before the node binds it: if the node
        // exits during startup, try again with another one.
        for _attempt in 0..3 {
            let data = tempfile::Builder::new()
                .prefix("sutantra-e2e-tls-")
                .tempdir()
                .expect("tempdir");
            let port = free_port();
            let (mut child, output) = spawn_node(port, data.path(), &tls_args(cert, key));
            let deadline = Instant::now() + Duration::from_secs(30);
            let ready = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("exited with {status}:\n{}", text_of(&output));
                    break false;
                }
                let (code, body) = curl(&format!("https://127.0.0.1:{port}/healthz"));
                if code == 200
                    && serde_json::from_str::<Value>(&body).is_ok_and(|v| v["status"] == "ok")
                {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "https node not healthy within 30 s: {code} {body}\n--- node output \
                         ---\n{}",
                        tail(&text_of(&output), 8000)
                    );
                }
                thread::sleep(Duration::from_millis(100));
            };
            if ready {
                return TlsNode {
                    child,
                    port,
                    output,
                    _data: data,
                    _lock: lock,
                };
            }
        }
        panic!("the https node exited during startup three times; last: {last}");
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn output(&self) -> String {
        text_of(&self.output)
    }

    /// The fingerprint of the certificate the node serves to a new connection now.
    fn served_fingerprint(&self) -> String {
        fingerprint_of(&format!(
            "{} s_client -connect 127.0.0.1:{} -servername localhost </dev/null 2>/dev/null",
            openssl(),
            self.port
        ))
    }

    fn sighup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -HUP the node");
    }

    /// Waits until the node's output contains `what` `n` times.
    fn wait_output(&self, what: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.output().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "the node did not log `{what}` ({n}x) within {timeout:?}:\n{}",
                tail(&self.output(), 6000)
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "--- https node output ---\n{}\n--- end ---",
                tail(&self.output(), 8000)
            );
        }
    }
}

#[test]
fn https_serves_healthz_the_page_in_chromium_and_aiortc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = make_cert(dir.path(), "node");
    let node = TlsNode::start(&cert, &key);
    let (code, body) = curl(&node.url("/healthz"));
    assert_eq!(code, 200, "{body}");
    assert_eq!(node.served_fingerprint(), file_fingerprint(&cert));
    // No plain HTTP beside HTTPS on the port.
    let (code, _) = curl(&format!("http://127.0.0.1:{}/healthz", node.port));
    assert_eq!(code, 0, "plain HTTP got an HTTP answer on the HTTPS port");
    // It says where to watch, with https.
    let want = format!("viewer: https://127.0.0.1:{}/", node.port);
    node.wait_output(&want, 1, Duration::from_secs(5));

    let run = clients::whep(
        &node.url("/whep"),
        &[
            "--insecure",
            "--seconds",
            "4",
            "--expect-width",
            "640",
            "--expect-height",
            "480",
        ],
        Duration::from_secs(90),
    );
    let v = run.json();
    println!(
        "aiortc over https: {} frames, {} fps",
        v["frames"], v["fps"]
    );
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= 60,
        "aiortc decoded {frames} frames in 4 s over https: {v}"
    );

    let run = clients::browser(
        &node.url("/"),
        &["5", "--ignore-certificate-errors"],
        Duration::from_secs(120),
    );
    let v = run.json();
    println!(
        "chromium over https: {} fps, {}x{}, {} decoded",
        v["fps"], v["frameWidth"], v["frameHeight"], v["framesDecoded"]
    );
    assert!(
        run.success,
        "browser viewer failed over https: {v}\nstderr:\n{}",
        run.stderr
    );
    let fps = v["fps"].as_f64().unwrap_or(0.0);
    assert!(fps >= 20.0, "the page decoded {fps} fps over https: {v}");
    assert_eq!(v["frameWidth"], 640, "{v}");
}

/// Runs `sutantra run` with `args` and expects it to exit by itself; returns (code, stderr).
fn run_to_exit(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut child, output) = spawn_node(free_port(), data.path(), args);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            // Let the pipe readers finish.
            thread::sleep(Duration::from_millis(100));
            return (status.code(), text_of(&output));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the node did not exit within 20 s:\n{}",
                tail(&text_of(&output), 4000)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_mismatched_or_missing_key_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_a, _) = make_cert(dir.path(), "a");
    let (_, key_b) = make_cert(dir.path(), "b");
    let (code, out) = run_to_exit(&tls_args(&cert_a, &key_b));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("does not match")
            && out.contains(&key_b.display().to_string())
            && out.contains(&cert_a.display().to_string()),
        "{out}"
    );

    let missing = dir.path().join("missing.key");
    let (code, out) = run_to_exit(&tls_args(&cert_a, &missing));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("cannot read") && out.contains(&missing.display().to_string()),
        "{out}"
    );

    // Swapped files: told as such.
    let (code, out) = run_to_exit(&tls_args(&key_b, &cert_a));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("no certificate") && out.contains("swapped"),
        "{out}"
    );

    // One of the two flags alone is a usage error.
    let (code, out) = run_to_exit(&["--tls-cert".as_ref(), cert_a.as_os_str()]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--tls-key"), "{out}");
}

#[test]
fn sighup_swaps_the_certificate_and_a_bad_pair_keeps_the_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert_a, key_a) = make_cert(dir.path(), "a");
    let (cert_b, key_b) = make_cert(dir.path(), "b");
    let (live_cert, live_key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(&cert_a, &live_cert).expect("copy");
    std::fs::copy(&key_a, &live_key).expect("copy");
    let (fp_a, fp_b) = (file_fingerprint(&cert_a), file_fingerprint(&cert_b));
    assert_ne!(fp_a, fp_b);
    let node = TlsNode::start(&live_cert, &live_key);
    assert_eq!(node.served_fingerprint(), fp_a);

    // The new certificate with the old key: refused, the running pair stays.
    std::fs::copy(&cert_b, &live_cert).expect("copy");
    node.sighup();
    node.wait_output("TLS certificate not reloaded", 1, Duration::from_secs(20));
    assert!(
        node.output().contains("does not match"),
        "{}",
        tail(&node.output(), 4000)
    );
    assert_eq!(node.served_fingerprint(), fp_a);
    assert_eq!(curl(&node.url("/healthz")).0, 200);

    // Its key too: new connections get the new certificate.
    std::fs::copy(&key_b, &live_key).expect("copy");
    node.sighup();
    node.wait_output("TLS certificate reloaded", 1, Duration::from_secs(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.served_fingerprint() != fp_b {
        assert!(
            Instant::now() < deadline,
            "the node still serves {} after SIGHUP (want {fp_b})",
            node.served_fingerprint()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl(&node.url("/healthz")).0, 200);
}

#[test]
fn running_out_of_descriptors_does_not_stop_the_server() {
    let _lock = hold_node_lock();
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // 64 descriptors (soft and hard): the node needs about 15, so a few dozen connections from
    // 127.0.0.1 (not limited per address) exhaust them well below http.max_connections.
    let (child, output) = spawn_limited(port, data.path(), &[], Some(64));
    let mut child = Reap(child);
    let base = format!("http://127.0.0.1:{port}");
    let healthy = |child: &mut Reap| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                panic!(
                    "the node exited with {status}:\n{}",
                    tail(&text_of(&output), 6000)
                );
            }
            let (code, body) = curl(&format!("{base}/healthz"));
            if code == 200 && body.contains("\"ok\"") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node not healthy within 30 s: {code} {body}\n{}",
                tail(&text_of(&output), 6000)
            );
            thread::sleep(Duration::from_millis(100));
        }
    };
    healthy(&mut child);
    // 200 silent connections: the kernel completes them, the node accepts until EMFILE.
    let flood: Vec<TcpStream> = (0..200)
        .filter_map(|_| connect_from("127.0.0.1", port).ok())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text_of(&output).contains("cannot accept HTTP connections") {
        assert!(
            Instant::now() < deadline,
            "no accept error with 200 connections and 64 descriptors ({} connected):\n{}",
            flood.len(),
            tail(&text_of(&output), 6000)
        );
        thread::sleep(Duration::from_millis(50));
    }
    drop(flood);
    // The server kept going: once the descriptors are back it answers again.
    healthy(&mut child);
    let (_, metrics) = curl(&format!("{base}/metrics"));
    let errors = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sutantra_http_accept_errors_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        errors >= 1.0,
        "sutantra_http_accept_errors_total = {errors}"
    );
}

/// A child process killed when dropped (also when the test fails).
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
