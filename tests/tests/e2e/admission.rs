//! Admission and the secure defaults: clients that abort requests or take answers and never
//! connect cannot keep a real viewer out; offers are rate-limited per address (not from
//! 127.0.0.1); a network listen address needs a token; the page takes its token from the URL
//! fragment; CORS is an allow-list; offers with data channels or too many sections get 400.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::clients;
use crate::node::{Node, binary};
use crate::transport::connect_from;

const SDP: (&str, &str) = ("Content-Type", "application/sdp");

/// Open file descriptors of `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// UDP sockets held by `pid`: its socket inodes found in the namespace's UDP tables.
fn udp_sockets(pid: u32) -> usize {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut udp = Vec::new();
    for table in ["udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9) {
                udp.push(inode.to_string());
            }
        }
    }
    inodes.iter().filter(|i| udp.contains(i)).count()
}

/// Resident memory of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A whole WHEP POST as bytes.
fn post(port: u16, offer: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "POST /whep HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n{offer}",
        offer.len()
    )
    .into_bytes()
}

/// Sends `request` from `from` and reads the status code of the answer.
fn status_of(from: &str, port: u16, request: &[u8]) -> u16 {
    let mut s = connect_from(from, port).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request).expect("send");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// The reproduction: 600 WHEP POSTs whose clients hang up 50 ms in, and 16 offers that
/// take their answer and never start ICE, all from 127.0.0.1 (no rate limit there: admission
/// alone must keep the real viewer in). Then an aiortc viewer is admitted at once and decodes;
/// 45 s later the node holds no UDP socket and as many fds as before, within 8.
#[test]
fn aborted_posts_and_silent_offers_leave_room_for_a_real_viewer() {
    let node = Node::start(&[]);
    let pid = node.pid();
    let offer = clients::aiortc_offer(&node.url("/whep"));
    let (fds0, udp0, rss0) = (fds(pid), udp_sockets(pid), rss_mib(pid));
    println!("before: {fds0} fds, {udp0} UDP sockets, RSS {rss0:.1} MiB");

    // 600 aborted POSTs, 20 clients at a time.
    let sent = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<_> = (0..20)
        .map(|_| {
            let (sent, req) = (sent.clone(), post(node.port, &offer, ""));
            let port = node.port;
            std::thread::spawn(move || {
                while sent.fetch_add(1, Ordering::Relaxed) < 600 {
                    if let Ok(mut s) = connect_from("127.0.0.1", port) {
                        let _ = s.write_all(&req);
                        std::thread::sleep(Duration::from_millis(50));
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("an aborting client panicked");
    }
    println!("600 aborted POSTs in {:?}", t0.elapsed());

    // 16 offers answered and never connected.
    let mut answered = 0;
    for _ in 0..16 {
        let r = node.request("POST", "/whep", &[SDP], Some(offer.clone().into_bytes()));
        assert!(
            r.status == 201 || r.status == 503,
            "a silent offer got {}: {}",
            r.status,
            r.body
        );
        answered += usize::from(r.status == 201);
    }
    assert!(
        answered >= 8,
        "only {answered} of 16 silent offers answered"
    );
    let h = node.healthz();
    println!("after the attack: {h}");

    // A real viewer is admitted at once and plays.
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "4"],
        Duration::from_secs(60),
    );
    let v = run.json();
    println!("aiortc viewer after the attack: {v}");
    assert!(run.success, "viewer refused or failed: {v}\n{}", run.stderr);
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(frames >= 60, "decoded {frames} frames in 4 s: {v}");

    // Everything set up for the attack goes away: the silent sessions time out (10 s).
    let deadline = Instant::now() + Duration::from_secs(45);
    let (mut f, mut u) = (fds(pid), udp_sockets(pid));
    while Instant::now() < deadline && (f > fds0 + 8 || u > udp0) {
        std::thread::sleep(Duration::from_millis(500));
        (f, u) = (fds(pid), udp_sockets(pid));
    }
    // The freed memory goes back at the node's next trim (every 3 s while sessions come and go,
    // `ops::memory`), not necessarily the moment the last session ended.
    let trimmed_by = Instant::now() + Duration::from_secs(10);
    let mut rss = rss_mib(pid);
    while rss > 28.0 && Instant::now() < trimmed_by {
        std::thread::sleep(Duration::from_millis(250));
        rss = rss_mib(pid);
    }
    let m = node.metrics();
    println!(
        "settled: {f} fds (was {fds0}), {u} UDP sockets (was {udp0}), RSS {rss:.1} MiB (was \
         {rss0:.1}); sessions abandoned {:?}, sessions now {:?}",
        m.get("sutantra_sessions_abandoned_total"),
        m.get("sutantra_sessions")
    );
    assert!(f <= fds0 + 8, "{f} fds open, {fds0} before the attack");
    assert_eq!(u, udp0, "UDP sockets left behind by abandoned sessions");
    assert!(rss <= 28.0, "RSS {rss:.1} MiB after the attack (bound 28)");
    assert_eq!(node.healthz()["sessions"], 0, "sessions left open");
}

/// One address gets `offer_burst` offers, then 429 with Retry-After; 127.0.0.1 is not limited.
#[test]
fn offers_are_rate_limited_per_address_except_127_0_0_1() {
    let node = Node::start(&[]);
    // Any body: the limit is taken before the body is read (these get 400, not an answer).
    let junk = post(node.port, "not an offer", "");
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(status_of("127.0.0.2", node.port, &junk));
    }
    println!("127.0.0.2: {codes:?}");
    assert!(
        codes[..8].iter().all(|&c| c == 400),
        "the burst of 8 is not limited: {codes:?}"
    );
    assert!(
        codes[8..].iter().all(|&c| c == 429),
        "beyond the burst: 429: {codes:?}"
    );
    for _ in 0..30 {
        assert_eq!(status_of("127.0.0.1", node.port, &junk), 400);
    }
    let r = {
        let mut s = connect_from("127.0.0.2", node.port).expect("connect");
        s.write_all(&junk).expect("send");
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf
    };
    assert!(
        r.to_ascii_lowercase().contains("retry-after:"),
        "429 without Retry-After: {r}"
    );
    assert!(r.contains("http.offers_per_s"), "429 without a reason: {r}");
    assert!(
        node.metric("sutantra_offers_rate_limited_total")
            .unwrap_or(0.0)
            >= 5.0
    );
}

/// The token is checked before the body is read: a POST that announces a large body and sends
/// none is answered 401 at once, not after the body timeout.
#[test]
fn the_token_is_checked_before_the_body() {
    let node = Node::start(&["--token", "t0ps3cret"]);
    let mut s = connect_from("127.0.0.1", node.port).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s.write_all(
        b"POST /whep HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\n\
          Content-Length: 60000\r\n\r\n",
    )
    .expect("send");
    let t0 = Instant::now();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).expect("an answer before the body");
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let wrong = node.request(
        "POST",
        "/whep",
        &[SDP, ("Authorization", "Bearer t0ps3cres")],
        Some(b"v=0\r\n".to_vec()),
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        !node.output().contains("t0ps3cres") && !node.output().contains("t0ps3cret"),
        "a token reached the log"
    );
}

/// `run --listen 0.0.0.0:PORT` without a token stops at start with exit 2 and names both ways
/// out; with `--allow-anonymous` or a token it starts.
#[test]
fn a_network_listen_address_needs_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(binary())
        .args(["run", "--source", "test-pattern", "--listen", "0.0.0.0:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run the node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.token"), "{err}");
    assert!(err.contains("http.allow_anonymous = true"), "{err}");

    // The same check for a config file names the file and line.
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, "[http]\nlisten = \"0.0.0.0:8080\"\n").expect("write");
    let out = Command::new(binary())
        .args(["config", "validate"])
        .arg(&cfg)
        .output()
        .expect("validate");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("node.toml") && err.contains("http.token"),
        "{err}"
    );
    std::fs::write(
        &cfg,
        "[http]\nlisten = \"0.0.0.0:8080\"\nallow_anonymous = true\n",
    )
    .expect("write");
    let ok = Command::new(binary())
        .args(["config", "validate"])
        .arg(&cfg)
        .output()
        .expect("validate");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// With a token, the node's page plays in Chromium when opened with `#token=`, and WHEP refuses
/// the same page without it (401).
#[test]
fn the_page_plays_with_the_token_in_the_fragment() {
    let node = Node::start(&["--token", "fragment-token-4711"]);
    let run = clients::browser(
        &node.url("/#token=fragment-token-4711"),
        &["4"],
        Duration::from_secs(120),
    );
    let v = run.json();
    println!("chromium with #token=: {v}");
    assert!(run.success, "the page did not play: {v}\n{}", run.stderr);
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) >= 60, "{v}");

    let without = clients::browser(
        &node.url("/"),
        &["2", "--timeout", "8"],
        Duration::from_secs(60),
    );
    let w = without.json();
    println!("chromium without the token: {w}");
    assert!(!without.success, "the page played without the token: {w}");
    let r = node.request("POST", "/whep", &[SDP], Some(b"v=0\r\n".to_vec()));
    assert_eq!(r.status, 401, "{}", r.body);
    // The token never travelled in a request line.
    assert!(!node.output().contains("fragment-token-4711"));
}

/// CORS: the node's own origin and listed origins may call WHEP; others get 403, and no
/// `Access-Control-Allow-Origin: *` anywhere.
#[test]
fn cors_is_an_allow_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("node.toml");
    std::fs::write(
        &cfg,
        "[http]\ncors_origins = [\"https://viewer.example.invalid\"]\n",
    )
    .expect("write");
    let cfg = cfg.display().to_string();
    let node = Node::start(&["--config", &cfg]);
    let preflight = |origin: &str| {
        node.request(
            "OPTIONS",
            "/whep",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            None,
        )
    };
    let foreign = preflight("http://evil.example.invalid");
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(
        foreign.body.contains("http.cors_origins"),
        "{}",
        foreign.body
    );
    assert!(foreign.header("access-control-allow-origin").is_empty());
    let post = node.request(
        "POST",
        "/whep",
        &[SDP, ("Origin", "http://evil.example.invalid")],
        Some(b"v=0\r\n".to_vec()),
    );
    assert_eq!(post.status, 403, "{}", post.body);

    let listed = preflight("https://viewer.example.invalid");
    assert!(
        listed.status == 204 || listed.status == 200,
        "{}",
        listed.body
    );
    assert_eq!(
        listed.header("access-control-allow-origin"),
        "https://viewer.example.invalid"
    );
    let own = format!("http://127.0.0.1:{}", node.port);
    let same = preflight(&own);
    assert!(same.status == 204 || same.status == 200, "{}", same.body);
    assert_eq!(same.header("access-control-allow-origin"), own);
    let health = node.get("/healthz");
    assert_ne!(health.header("access-control-allow-origin"), "*");
}

/// Offers that ask for what a camera does not serve are refused with 400 and a reason, before a
/// peer connection is built.
#[test]
fn offers_with_data_channels_or_too_many_sections_get_400() {
    let node = Node::start(&[]);
    let offer = clients::aiortc_offer(&node.url("/whep"));
    let data = format!(
        "{offer}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
         a=sctp-port:5000\r\n"
    );
    let r = node.request("POST", "/whep", &[SDP], Some(data.into_bytes()));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("m=application"), "{}", r.body);

    let mut many = offer.clone();
    for _ in 0..8 {
        many.push_str("m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\n");
    }
    let r = node.request("POST", "/whep", &[SDP], Some(many.into_bytes()));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("media sections"), "{}", r.body);

    let mut cands = offer.clone();
    for i in 0..64 {
        cands.push_str(&format!(
            "a=candidate:{i} 1 udp 1 10.9.{}.{} 9 typ host\r\n",
            i / 200,
            i % 200 + 1
        ));
    }
    let r = node.request("POST", "/whep", &[SDP], Some(cands.into_bytes()));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("candidates"), "{}", r.body);
    assert_eq!(node.healthz()["sessions"], 0);
}
