//! Field operations: every control command against a running node over its Unix socket, in text
//! and `--json`; bad arguments (exit 2), no node (exit 3), a second node on the same data dir, a
//! stale socket file; and `sutantra check --json`.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::clients;
use crate::node::{Node, binary, tail};

/// What one CLI run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\nstdout: {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    pub(crate) fn ok(self, what: &str) -> Self {
        assert_eq!(
            self.code, 0,
            "`{what}` exited {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `sutantra ARGS --data-dir DIR`.
pub(crate) fn cli(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(binary())
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("SUTANTRA_SOCKET")
        .output()
        .unwrap_or_else(|e| panic!("run sutantra {args:?}: {e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn status(dir: &Path) -> Value {
    cli(dir, &["status", "--json"]).ok("status --json").json()
}

#[test]
fn status_stream_keyframe_logs_levels_and_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start_in(dir.path(), &[]);
    let d = dir.path();

    // status: text and JSON; the rate settles at about 30 fps.
    let text = cli(d, &["status"]).ok("status").stdout;
    for field in [
        "source:",
        "fps:",
        "bitrate:",
        "viewers:",
        "frame drops:",
        "uptime:",
    ] {
        assert!(text.contains(field), "status text lacks {field:?}:\n{text}");
    }
    assert!(text.contains("cpu temp:"), "{text}");
    wait_for("status fps ≈ 30", Duration::from_secs(10), || {
        status(d)["fps"]
            .as_f64()
            .is_some_and(|f| (25.0..=35.0).contains(&f))
    });
    let s = status(d);
    assert_eq!(s["source"], "test-pattern", "{s}");
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["viewers"].as_u64(), Some(0), "{s}");
    assert!(s["uptime_s"].is_u64(), "{s}");
    assert!(s["frame_drops"].is_u64(), "{s}");
    assert!(s["chain_height"].is_null(), "no chain configured: {s}");
    assert!(s["outbox_depth"].is_u64(), "{s}");
    assert!(
        s.get("cpu_temp_c").is_some() && s.get("throttled").is_some(),
        "{s}"
    );

    // stream keyframe: the keyframe counter grows.
    let before = node.metric("sutantra_keyframes_total").unwrap_or(0.0);
    assert!(
        cli(d, &["stream", "keyframe"])
            .ok("stream keyframe")
            .stdout
            .contains("keyframe requested")
    );
    node.wait_metric(
        "sutantra_keyframes_total",
        "a keyframe after `stream keyframe`",
        Duration::from_secs(5),
        |k| k > before,
    );
    let j = cli(d, &["stream", "keyframe", "--json"])
        .ok("stream keyframe --json")
        .json();
    assert_eq!(j["keyframe"], "requested", "{j}");

    // stream stop: frames stop; /healthz and status say paused; start: they flow again.
    let j = cli(d, &["stream", "stop", "--json"])
        .ok("stream stop")
        .json();
    assert_eq!(j["stream"], "stopped");
    thread::sleep(Duration::from_millis(500));
    let h = node.healthz();
    let frozen = h["frames_sent"].as_u64().expect("frames_sent");
    assert_eq!(h["status"], "paused", "{h}");
    thread::sleep(Duration::from_millis(1500));
    let h = node.healthz();
    assert_eq!(
        h["frames_sent"].as_u64(),
        Some(frozen),
        "frames kept flowing: {h}"
    );
    assert_eq!(h["status"], "paused", "{h}");
    assert_eq!(status(d)["state"], "paused");
    assert!(
        cli(d, &["stream", "start"])
            .ok("stream start")
            .stdout
            .contains("started")
    );
    node.wait_healthz("frames flow again", Duration::from_secs(5), |h| {
        h["frames_sent"].as_u64().is_some_and(|n| n >= frozen + 15) && h["status"] == "ok"
    });

    // reboot-stream: the source closes and reopens; frames keep coming, HTTP stays up.
    let sent = node.healthz()["frames_sent"].as_u64().expect("frames_sent");
    let j = cli(d, &["reboot-stream", "--json"])
        .ok("reboot-stream")
        .json();
    assert!(j["reboot_stream"].is_string(), "{j}");
    node.wait_healthz("frames after reboot-stream", Duration::from_secs(10), |h| {
        h["frames_sent"].as_u64().is_some_and(|n| n >= sent + 30) && h["status"] == "ok"
    });

    // logs: recent lines, text and JSON.
    let logs = cli(d, &["logs", "-n", "1000"]).ok("logs").stdout;
    assert!(logs.contains("node started"), "logs:\n{logs}");
    assert!(logs.contains("source reopened"), "logs:\n{logs}");
    let two = cli(d, &["logs", "-n", "2", "--json"])
        .ok("logs --json")
        .stdout;
    let lines: Vec<Value> = two
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    assert_eq!(lines.len(), 2, "{two}");
    assert!(lines.iter().all(|l| l["line"].is_string()), "{two}");

    // logs --follow streams a line logged after it started.
    let mut follow = Command::new(binary())
        .args(["logs", "--follow", "-n", "1", "--data-dir"])
        .arg(d)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs --follow");
    thread::sleep(Duration::from_millis(500));
    cli(d, &["stream", "keyframe"]).ok("stream keyframe");
    thread::sleep(Duration::from_millis(500));
    let _ = follow.kill();
    let out = follow.wait_with_output().expect("logs --follow output");
    let followed = String::from_utf8_lossy(&out.stdout);
    assert!(
        followed.contains("keyframe requested by the operator"),
        "logs --follow:\n{followed}"
    );

    // set-log-level: debug, then info; a bad filter is refused.
    let j = cli(d, &["set-log-level", "debug", "--json"])
        .ok("set-log-level debug")
        .json();
    assert_eq!(j["log_level"], "debug");
    assert_eq!(status(d)["log_level"], "debug");
    assert!(
        cli(d, &["set-log-level", "info"])
            .ok("set-log-level info")
            .stdout
            .contains("info")
    );
    assert_eq!(status(d)["log_level"], "info");
    let bad = cli(d, &["set-log-level", "debug["]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("not a log filter"), "{bad:?}");

    // config show: the effective configuration.
    let c = cli(d, &["config", "show", "--json"])
        .ok("config show --json")
        .json();
    assert_eq!(c["source"]["spec"], "test-pattern", "{c}");
    assert_eq!(c["source"]["width"].as_u64(), Some(640), "{c}");
    assert_eq!(c["source"]["fps"].as_u64(), Some(30), "{c}");
    let text = cli(d, &["config", "show"]).ok("config show").stdout;
    assert!(
        text.contains("[source]") && text.contains("spec = \"test-pattern\""),
        "{text}"
    );
    drop(node);
}

#[test]
fn viewers_are_listed_and_kicked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start_in(dir.path(), &[]);
    let d = dir.path();
    assert_eq!(
        cli(d, &["viewers"]).ok("viewers").stdout.trim(),
        "no viewers"
    );
    let j = cli(d, &["viewers", "--json"]).ok("viewers --json").json();
    assert_eq!(j["viewers"].as_array().map(Vec::len), Some(0), "{j}");

    let mut viewer = clients::spawn_whep(&node.url("/whep"), &["--seconds", "60"]);
    node.wait_healthz("one viewer", Duration::from_secs(30), |h| {
        h["viewers"].as_u64() == Some(1)
    });
    let j = cli(d, &["viewers", "--json"]).ok("viewers --json").json();
    let list = j["viewers"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "{j}");
    let id = list[0]["id"].as_str().expect("id").to_string();
    assert_eq!(list[0]["state"], "streaming", "{j}");
    assert!(
        list[0]["since_unix"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000),
        "{j}"
    );
    assert!(
        list[0]["packets_queued"].is_u64() && list[0]["packets_dropped"].is_u64(),
        "{j}"
    );
    assert_eq!(status(d)["viewers"].as_u64(), Some(1));
    let text = cli(d, &["viewers"]).ok("viewers").stdout;
    assert!(text.contains(&id) && text.contains("streaming"), "{text}");

    let unknown = cli(d, &["viewers", "--kick", "nosuchid"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("no viewer session"), "{unknown:?}");

    let j = cli(d, &["viewers", "--kick", &id, "--json"])
        .ok("viewers --kick")
        .json();
    assert_eq!(j["kicked"], id.as_str());
    node.wait_healthz("viewers back to 0", Duration::from_secs(10), |h| {
        h["viewers"].as_u64() == Some(0) && h["sessions"].as_u64() == Some(0)
    });
    let _ = viewer.kill();
    let _ = viewer.wait();
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for args in [
        &["viewers", "--bogus"][..],
        &["logs", "-n", "0"],
        &["logs", "-n", "many"],
        &["stream"],
        &["stream", "pause"],
        &["set-log-level"],
    ] {
        let out = cli(dir.path(), args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(!out.stderr.trim().is_empty(), "{args:?}: no message");
    }
}

#[test]
fn no_node_running_exits_3_with_how_to_start_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["stream", "keyframe"],
        &["stream", "stop"],
        &["stream", "start"],
        &["viewers"],
        &["viewers", "--kick", "x"],
        &["logs"],
        &["set-log-level", "debug"],
        &["reboot-stream"],
        &["config", "show"],
    ] {
        let out = cli(dir.path(), args);
        assert_eq!(out.code, 3, "{args:?}: {out:?}");
        let want = format!("no node running at {}", socket.display());
        assert!(out.stderr.contains(&want), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("sutantra run"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // --socket wins over --data-dir.
    let out = Command::new(binary())
        .args(["status", "--socket", "/nonexistent/sutantra.sock"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sutantra.sock"));
}

#[test]
fn a_second_node_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start_in(dir.path(), &[]);
    let out = Command::new(binary())
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run a second node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another sutantra node is running"),
        "{}",
        tail(&stderr, 2000)
    );
    // The first node still answers on its socket.
    assert_eq!(status(dir.path())["state"], "running");
    drop(node);
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.sock");
    // A crashed node leaves its socket file: bound once, nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let node = Node::start_in(dir.path(), &[]);
    assert_eq!(status(dir.path())["state"], "running");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660, "socket mode {mode:o}");
    assert!(node.output().contains("replaced a stale control socket"));
}

/// `sutantra check --json`: every check has a verdict; the exit code follows the worst one.
fn check_json(dir: &Path, extra: &[&str]) -> (Out, Value) {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    let out = cli(dir, &args);
    let j = out.json();
    let checks = j["checks"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = checks.iter().filter_map(|c| c["check"].as_str()).collect();
    for want in [
        "camera", "libvpx", "encoder", "disk", "keys", "clock", "udp", "memory", "chain", "stun",
    ] {
        assert!(names.contains(&want), "no {want} check: {j}");
    }
    for c in &checks {
        let v = c["verdict"].as_str().unwrap_or_default();
        assert!(["OK", "WARN", "FAIL"].contains(&v), "bad verdict: {c}");
        assert!(c["detail"].as_str().is_some_and(|d| !d.is_empty()), "{c}");
        if v != "OK" {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "no fix: {c}"
            );
        }
    }
    let fails = checks.iter().filter(|c| c["verdict"] == "FAIL").count();
    assert_eq!(j["fail"].as_u64(), Some(fails as u64), "{j}");
    assert_eq!(
        out.code,
        if fails > 0 { 1 } else { 0 },
        "exit vs verdicts: {j}"
    );
    (out, j)
}

#[test]
fn check_gives_every_check_a_verdict_without_a_running_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // The default configuration: the test pattern, libvpx and the encoder are fine anywhere.
    let (_, j) = check_json(d, &[]);
    for name in ["camera", "libvpx", "encoder", "keys", "chain"] {
        let c = j["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["check"] == name))
            .cloned()
            .unwrap_or_default();
        assert_eq!(c["verdict"], "OK", "{name}: {c}");
    }
    let text = cli(d, &["check"]);
    assert!(text.stdout.contains("OK    camera"), "{text:?}");
    let failed = text.stdout.lines().any(|l| l.starts_with("FAIL"));
    assert_eq!(failed, text.code == 1, "{text:?}");

    // A key open to others is a FAIL with the chmod that fixes it, and the exit code says so.
    use std::os::unix::fs::PermissionsExt;
    let key = d.join("node.key");
    std::fs::write(&key, [0u8; 64]).expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (out, j) = check_json(d, &[]);
    assert_eq!(out.code, 1, "{j}");
    let keys = j["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == "keys"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(keys["verdict"], "FAIL", "{keys}");
    assert!(
        keys["fix"]
            .as_str()
            .is_some_and(|f| f.contains("chmod 600")),
        "{keys}"
    );

    // A camera that is not there is a FAIL.
    let cfg = d.join("cam.toml");
    std::fs::write(&cfg, "[source]\nspec = \"y4m:/nonexistent/clip.y4m\"\n").expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (out, j) = check_json(d, &["--config", cfg.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, 1, "{j}");

    // A bad configuration is exit 2 with the file and key.
    std::fs::write(&cfg, "[source]\nwidth = 3\n").expect("write");
    let out = cli(d, &["check", "--config", cfg.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("source.width"), "{out:?}");
}

#[test]
fn the_socket_speaks_versioned_json_lines_with_a_length_cap() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let _node = Node::start_in(dir.path(), &[]);
    let stream =
        std::os::unix::net::UnixStream::connect(dir.path().join("control.sock")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut ask = |line: &[u8]| -> Value {
        // The node closes after an over-long line without reading the rest: a write may fail.
        let _ = writer.write_all(line);
        let _ = writer.write_all(b"\n");
        let mut answer = String::new();
        reader.read_line(&mut answer).expect("read");
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    };
    let ok = ask(br#"{"v":1,"cmd":"status"}"#);
    assert_eq!(
        (ok["v"].as_u64(), ok["ok"].as_bool()),
        (Some(1), Some(true)),
        "{ok}"
    );
    assert_eq!(ok["data"]["source"], "test-pattern", "{ok}");
    // Errors answer on the same connection, which stays usable.
    for (bad, want) in [
        (&b"not json"[..], "bad request"),
        (br#"{"v":1,"cmd":"format-disk"}"#, "format-disk"),
        (br#"{"v":9,"cmd":"status"}"#, "version 9"),
        (br#"{"v":1,"cmd":"status","force":true}"#, "force"),
    ] {
        let r = ask(bad);
        assert_eq!(
            (r["v"].as_u64(), r["ok"].as_bool()),
            (Some(1), Some(false)),
            "{r}"
        );
        let e = r["error"].as_str().unwrap_or_default();
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(bad));
    }
    assert_eq!(ask(br#"{"v":1,"cmd":"viewers"}"#)["ok"], true);
    // A line over 64 KiB: an error answer, then the connection closes.
    let r = ask(&vec![b'x'; 70 * 1024]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("longer than")),
        "{r}"
    );
    let mut rest = String::new();
    // Closed: end of stream, or a reset (the node dropped the unread rest of the line).
    let n = reader.read_line(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "still open: {rest:?}");
}
