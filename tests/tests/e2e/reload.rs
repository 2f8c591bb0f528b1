//! Reloading a running node's configuration: `sutantra config set`, `sutantra config reload`
//! and SIGHUP.
//!
//! - `config set encoder.bitrate_kbps` is applied at once (the encoder's target moves), the
//!   file keeps its comments, and the answer lists the key as applied;
//! - `config set source.width/height` restarts the pipeline at the new size while an aiortc
//!   viewer stays connected and decodes both sizes; `webrtc.max_viewers` is reported as needing a
//!   restart; a bad value is refused with file, line and key and the file is not touched;
//! - SIGHUP applies a hand edit; an invalid file on SIGHUP changes nothing and the node goes on.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients;
use crate::control::{cli, wait_for};
use crate::node::{Node, tail};

const CONFIG: &str = "# test node\n[source]\nspec = \"test-pattern\"\nwidth = 640 # VGA\nheight = 480\n\n[encoder]\n# kbit/s\nbitrate_kbps = 1000\n";

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    std::fs::write(&path, CONFIG).expect("write the config");
    path
}

#[test]
fn config_set_applies_live_restarts_the_pipeline_and_refuses_bad_values() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(conf_dir.path());
    let data = tempfile::tempdir().expect("tempdir");
    // The node's size comes from the file (no --width/--height flags over it).
    let node = Node::start_with_file(
        data.path(),
        &[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--ice-server",
            "none",
        ],
    );
    let dir = data.path();
    assert_eq!(node.healthz()["width"], 640);

    // A viewer that watches through all of it.
    // It has decoded its first frame before the size changes, so it sees the change.
    let ready = conf_dir.path().join("viewer-ready");
    let viewer = clients::spawn_whep(
        &node.url("/whep"),
        &[
            "--seconds",
            "14",
            "--ready-file",
            ready.to_str().expect("utf-8 path"),
        ],
    );
    wait_for("the viewer's first frame", Duration::from_secs(30), || {
        ready.exists()
    });

    // Live: the bitrate.
    let out = cli(
        dir,
        &["config", "set", "encoder.bitrate_kbps", "600", "--json"],
    )
    .ok("config set");
    let report = out.json();
    assert_eq!(
        report["applied"],
        serde_json::json!(["encoder.bitrate_kbps"]),
        "{report}"
    );
    assert_eq!(report["pipeline"], serde_json::json!([]), "{report}");
    assert_eq!(
        node.metric("sutantra_encoder_target_bitrate_kbps"),
        Some(600.0)
    );
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("bitrate_kbps = 600"), "{text}");
    assert!(
        text.contains("# kbit/s") && text.contains("# VGA"),
        "comments lost:\n{text}"
    );

    // Pipeline: a new size, with the viewer connected.
    cli(dir, &["config", "set", "source.height", "360", "--json"]).ok("set height");
    let out = cli(dir, &["config", "set", "source.width", "480"]).ok("set width");
    assert!(out.stdout.contains("source.width"), "{}", out.stdout);
    wait_for("the new size in /healthz", Duration::from_secs(10), || {
        let h = node.healthz();
        h["width"] == 480 && h["height"] == 360 && h["status"] == "ok"
    });
    let shown = cli(dir, &["config", "show", "--json"])
        .ok("config show")
        .json();
    assert_eq!(shown["source"]["width"], 480, "{shown}");
    assert_eq!(shown["encoder"]["bitrate_kbps"], 600, "{shown}");

    // Restart-only: reported, not applied.
    let out = cli(dir, &["config", "set", "webrtc.max_viewers", "8", "--json"]).ok("max_viewers");
    let report = out.json();
    assert_eq!(
        report["needs_restart"],
        serde_json::json!(["webrtc.max_viewers"]),
        "{report}"
    );
    assert!(node.healthz()["status"] == "ok");

    // A camera that does not open: the pipeline goes back to the running settings, the reload is
    // refused and the file is put back, so it never holds what the node cannot run.
    let before = std::fs::read_to_string(&file).expect("read");
    let out = cli(
        dir,
        &[
            "config",
            "set",
            "source.spec",
            "v4l2:/dev/sutantra-no-such-camera",
        ],
    );
    assert_eq!(out.code, 1, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("sutantra-no-such-camera") && out.stderr.contains("is back as it was"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);
    wait_for("the previous pipeline", Duration::from_secs(10), || {
        let h = node.healthz();
        h["width"] == 480 && h["status"] == "ok" && h["source"] == "test-pattern"
    });

    // Refused: a bad value names file, line and key, and the file is untouched.
    let before = std::fs::read_to_string(&file).expect("read");
    let out = cli(dir, &["config", "set", "encoder.bitrate_kbps", "0"]);
    assert_eq!(out.code, 2, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("node.toml:") && out.stderr.contains("bitrate_kbps"),
        "{}",
        out.stderr
    );
    let out = cli(dir, &["config", "set", "encoder.no_such_key", "1"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("no_such_key"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), before);

    // The viewer stayed connected through the restart and decoded both sizes.
    let run = clients::finish(viewer, Duration::from_secs(60), "whep_client.py");
    let j = run.json();
    assert!(
        run.success && j.get("error").is_none(),
        "the viewer failed across the reload: {j}\n{}\n--- node ---\n{}",
        run.stderr,
        tail(&node.output(), 3000)
    );
    // The viewer followed the restarts from the first size to the final one (the 640x360 between
    // them may be too short-lived to decode).
    let sizes = j["sizes_seen"].as_array().cloned().unwrap_or_default();
    assert!(
        sizes.contains(&serde_json::json!([480, 360])),
        "the viewer never decoded the new size 480x360: {j}"
    );
    assert!(
        sizes.contains(&serde_json::json!([640, 480])),
        "the viewer's first size 640x480 is missing: {j}"
    );
    assert!(j["frames"].as_u64().unwrap_or(0) >= 14 * 30 * 8 / 10, "{j}");
    println!("[reload] viewer across the pipeline restart: {j}");
}

#[test]
fn sighup_reloads_and_an_invalid_file_changes_nothing() {
    let conf_dir = tempfile::tempdir().expect("tempdir");
    let file = write_config(conf_dir.path());
    let data = tempfile::tempdir().expect("tempdir");
    let mut node = Node::start_with_file(
        data.path(),
        &[
            "--config",
            file.to_str().expect("utf-8 path"),
            "--ice-server",
            "none",
        ],
    );
    let hup = |pid: u32| {
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -HUP");
    };
    std::fs::write(
        &file,
        CONFIG.replace("bitrate_kbps = 1000", "bitrate_kbps = 700"),
    )
    .expect("edit");
    hup(node.pid());
    wait_for("the new bitrate", Duration::from_secs(10), || {
        node.metric("sutantra_encoder_target_bitrate_kbps") == Some(700.0)
    });

    // An invalid file: the node keeps running on what it has and says why.
    std::fs::write(
        &file,
        CONFIG.replace("bitrate_kbps = 1000", "bitrate_kbps = \"fast\""),
    )
    .expect("edit");
    hup(node.pid());
    wait_for("the refusal in the log", Duration::from_secs(10), || {
        node.output().contains("configuration not reloaded")
    });
    node.assert_alive();
    assert_eq!(
        node.metric("sutantra_encoder_target_bitrate_kbps"),
        Some(700.0)
    );
    assert_eq!(node.healthz()["status"], "ok");
    let out = cli(data.path(), &["config", "reload"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("node.toml") && out.stderr.contains("bitrate_kbps"),
        "{}",
        out.stderr
    );
}
