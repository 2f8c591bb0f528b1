//! The `rpicam` source (a Raspberry Pi camera module through `rpicam-vid`), against the suite's
//! stand-in `rpicam-vid` (tests/e2e/rpicam/: TEST CODE that behaves as the real tool documents:
//! its options, raw I420 with padded rows on stdout, libcamera-style messages on stderr, an
//! error for an option it does not know) put first on the node's `PATH`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::clients;
use crate::node::{self, Node};

const REOPENS: &str = "sutantra_source_reopens_total";
const VIEWERS: &str = "sutantra_viewers";

fn stand_in_dir() -> PathBuf {
    clients::e2e_dir().join("rpicam")
}

/// `PATH` with the stand-in first.
fn path_with_stand_in() -> String {
    format!(
        "{}:{}",
        stand_in_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn pid_in(file: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

#[test]
fn a_camera_module_streams_and_a_killed_camera_process_is_restarted_within_two_seconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pidfile = dir.path().join("rpicam.pid");
    let path = path_with_stand_in();
    let node = Node::start_env(
        &["--source", "rpicam", "--width", "640", "--height", "480"],
        &[
            ("PATH", path.as_str()),
            ("FAKE_RPICAM_PIDFILE", pidfile.to_str().expect("utf-8 path")),
        ],
    );
    let h = node.healthz();
    assert_eq!(h["source"], "rpicam", "{h}");
    let first = pid_in(&pidfile).expect("the stand-in wrote its pid");

    // A steady viewer: 10 s of the camera at 640x480.
    let args = [
        "--expect-width",
        "640",
        "--expect-height",
        "480",
        "--seconds",
    ];
    let steady = clients::whep(
        &node.url("/whep"),
        &[&args[..], &["10"]].concat(),
        Duration::from_secs(90),
    );
    let r = steady.json();
    assert!(
        steady.success,
        "viewer failed: {}\n{}",
        steady.stdout, steady.stderr
    );
    let frames = r["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= 280,
        "the viewer decoded {frames} frames in 10 s: {r}"
    );

    // Another viewer watches while the camera process is killed: it stays connected (the
    // slate, then the camera again), and the camera is back within 2 s.
    let viewer = clients::spawn_whep(&node.url("/whep"), &[&args[..], &["8"]].concat());
    node.wait_metric(VIEWERS, "the viewer", Duration::from_secs(30), |v| v >= 1.0);
    // Place the kill inside the viewer's window (which starts at its first frame).
    thread::sleep(Duration::from_secs(3));
    let reopens = node.metric(REOPENS).unwrap_or(0.0);
    let killed_at = Instant::now();
    let rc = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .expect("kill");
    assert!(rc.success(), "kill -KILL {first}");
    // The source counts as reopened once the new process delivered its first frame.
    node.wait_metric(
        REOPENS,
        "the camera process restarted",
        Duration::from_secs(10),
        |v| v > reopens,
    );
    let outage = killed_at.elapsed();
    let second = pid_in(&pidfile).expect("pid");
    assert_ne!(second, first, "the node did not start a new rpicam-vid");
    assert!(
        std::path::Path::new(&format!("/proc/{second}")).exists(),
        "the new rpicam-vid is not running"
    );
    let run = clients::finish(viewer, Duration::from_secs(90), "whep_client.py");
    let r2 = run.json();
    assert!(run.success, "viewer failed: {}\n{}", run.stdout, run.stderr);
    assert!(
        outage < Duration::from_secs(2),
        "the camera came back {outage:?} after the kill (bound: 2 s)"
    );
    // The longest pause the viewer saw between pictures (RTP timestamps of decoded frames).
    let pause = r2["rtp_ts_max_step_ms"].as_f64().unwrap_or(f64::MAX);
    assert!(
        pause < 2000.0,
        "the viewer saw no picture for {pause} ms: {r2}"
    );
    // Stopping the node stops its camera process.
    let (clean, out) = node.stop(Duration::from_secs(10));
    assert!(
        clean,
        "the node did not stop cleanly:\n{}",
        node::tail(&out, 3000)
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{second}")).exists(),
        "rpicam-vid (pid {second}) outlived the node"
    );
    eprintln!(
        "rpicam: {frames} frames in 10 s; after kill -9 the camera was back in {outage:?}, the \
         viewer's longest pause {pause} ms, {} frames in its 8 s",
        r2["frames"]
    );
}

#[test]
fn without_rpicam_vid_on_path_the_node_exits_naming_the_tool_and_its_package() {
    let _serial = node::hold_node_lock();
    let dir = tempfile::tempdir().expect("temp dir");
    // A PATH with the usual system directories but no camera tools (none on a test machine).
    let bare = dir.path().join("bin");
    std::fs::create_dir(&bare).expect("mkdir");
    let out = Command::new(node::binary())
        .args([
            "run",
            "--source",
            "rpicam",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("PATH", &bare)
        .stdin(Stdio::null())
        .output()
        .expect("run sutantra");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the node ran without a camera tool:\n{text}"
    );
    assert!(text.contains("rpicam-vid"), "{text}");
    assert!(text.contains("apt install rpicam-apps"), "{text}");
}

#[test]
fn an_option_the_tool_does_not_know_is_refused_as_the_real_tool_does() {
    // The stand-in is only worth its tests if it refuses what the real tool refuses.
    let out = Command::new(stand_in_dir().join("rpicam-vid"))
        .args(["--codec", "yuv420", "--no-such-option"])
        .output()
        .expect("run the stand-in");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unrecognised option '--no-such-option'")
    );
}

#[test]
fn rotated_180_the_viewer_still_reads_the_latency_stamp() {
    // `[source] rotation = 180` (a camera mounted upside down): the test pattern turns its
    // picture and draws the stamp after, so glass-to-glass stays measurable.
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("node.toml");
    std::fs::write(&cfg, "[source]\nrotation = 180\n").expect("write config");
    let node = Node::start(&["--config", cfg.to_str().expect("utf-8 path")]);
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "3"],
        Duration::from_secs(60),
    );
    let r = run.json();
    assert!(run.success, "viewer failed: {}\n{}", run.stdout, run.stderr);
    let stamped = r["stamp_ok"].as_f64().unwrap_or(0.0);
    assert!(
        stamped >= 0.95,
        "only {stamped} of the frames had a readable stamp: {r}"
    );
    let h = node.healthz();
    assert!(
        h["source_detail"]
            .as_str()
            .unwrap_or("")
            .contains("rotated 180"),
        "{h}"
    );
}
