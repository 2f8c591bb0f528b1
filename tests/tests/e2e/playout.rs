//! Browser latency: the playout-delay RTP header extension. A viewer whose offer lists it gets it
//! in the answer (same id), one whose offer does not, or a node with `webrtc.playout_delay =
//! false`, does not; Chromium (its own offer) plays the node with it at full rate, applies it
//! (frames leave its jitter buffer as soon as they are complete, which it only does when the
//! packets carry the extension) and reads the latency stamp; the node's own page still plays.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::clients;
use crate::node::{Node, workspace};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");
const URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// `offer` with the playout-delay extension added to its video section under an id it does not
/// use yet; returns the new offer and the id.
fn with_playout_delay(offer: &str) -> (String, u32) {
    assert!(!offer.contains(URI), "the offer already has it:\n{offer}");
    let used: Vec<u32> = offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=extmap:"))
        .filter_map(|l| l.split([' ', '/']).next())
        .filter_map(|id| id.parse().ok())
        .collect();
    let id = (1..=14)
        .find(|id| !used.contains(id))
        .expect("a free extmap id");
    let mut out = String::new();
    let mut in_video = false;
    let mut added = false;
    for line in offer.split_inclusive('\n') {
        let l = line.trim_end();
        if l.starts_with("m=") {
            in_video = l.starts_with("m=video");
        }
        out.push_str(line);
        // Right after the video section's connection line: inside the section, before anything
        // order-sensitive.
        if in_video && !added && l.starts_with("c=") {
            out.push_str(&format!("a=extmap:{id} {URI}\r\n"));
            added = true;
        }
    }
    assert!(added, "no video section with a c= line in:\n{offer}");
    (out, id)
}

/// The `a=extmap:ID URI` id of the playout-delay extension in `sdp`.
fn extmap_id(sdp: &str) -> Option<u32> {
    sdp.lines()
        .filter(|l| l.contains(URI))
        .filter_map(|l| l.trim().strip_prefix("a=extmap:"))
        .filter_map(|l| l.split([' ', '/']).next())
        .find_map(|id| id.parse().ok())
}

fn answer(node: &Node, offer: &str) -> String {
    let r = node.request("POST", "/whep", &[SDP], Some(offer.as_bytes().to_vec()));
    assert_eq!(r.status, 201, "POST /whep: {}", r.body);
    r.body
}

/// A node whose configuration file turns the extension off.
fn node_without_playout_delay(dir: &tempfile::TempDir) -> Node {
    let conf: PathBuf = dir.path().join("off.toml");
    std::fs::write(&conf, "[webrtc]\nplayout_delay = false\n").expect("write the config");
    Node::start(&["--config", conf.to_str().expect("UTF-8 path")])
}

#[test]
fn the_answer_carries_playout_delay_only_when_offered_and_enabled() {
    let node = Node::start(&[]);
    let plain = clients::aiortc_offer(&node.url("/whep"));
    let (offer, id) = with_playout_delay(&plain);

    let a = answer(&node, &offer);
    assert_eq!(
        extmap_id(&a),
        Some(id),
        "the answer does not carry a=extmap:{id} {URI}:\n{a}"
    );
    let a = answer(&node, &plain);
    assert_eq!(
        extmap_id(&a),
        None,
        "an offer without the extension got it:\n{a}"
    );
    drop(node);

    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_without_playout_delay(&dir);
    let a = answer(&node, &offer);
    assert_eq!(
        extmap_id(&a),
        None,
        "webrtc.playout_delay = false, yet the answer has it:\n{a}"
    );
}

/// `bench/browser_latency.mjs` against `whep_url` for `seconds` (after 2 s of warm-up).
fn chromium_latency(whep_url: &str, seconds: u32) -> Value {
    let script = workspace().join("bench/browser_latency.mjs");
    let pw = clients::e2e_dir().join("node_modules/playwright-core/package.json");
    assert!(
        pw.is_file(),
        "{} is missing: run `scripts/setup.sh` (as root) to install playwright-core",
        pw.display()
    );
    let child = Command::new("node")
        .arg(&script)
        .args(["--url", whep_url, "--seconds", &seconds.to_string()])
        .args(["--warmup", "2", "--timeout", "60"])
        .current_dir(clients::e2e_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start `node {}`: {e}", script.display()));
    let run = clients::finish(child, Duration::from_secs(150), "browser_latency.mjs");
    let v = run.json();
    assert!(
        run.success,
        "the Chromium viewer failed: {v}\nstderr:\n{}",
        run.stderr
    );
    v
}

fn f(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_f64()
        .unwrap_or_else(|| panic!("{} missing in {v}", path.join(".")))
}

fn line(v: &Value) -> String {
    format!(
        "extmap offer {} answer {}, {} fps decoded, latency (stamp -> on screen) ms p50 {} p95 {} \
         ({} frames), browser's share (received -> on screen) p50 {} ms, jitter buffer delay {} ms \
         per frame",
        v["offer_playout_delay_id"],
        v["answer_playout_delay_id"],
        v["stats"]["fps_decoded"],
        v["latency_ms"]["p50"],
        v["latency_ms"]["p95"],
        v["latency_ms"]["count"],
        v["receive_to_screen_ms"]["p50"],
        v["stats"]["jitter_buffer_delay_ms"],
    )
}

#[test]
fn chromium_plays_with_playout_delay_and_applies_it() {
    let node = Node::start(&[]);
    let with = chromium_latency(&node.url("/whep"), 6);
    println!("chromium, playout delay [0, 0]: {}", line(&with));
    let offered = with["offer_playout_delay_id"].as_u64();
    assert!(
        offered.is_some(),
        "Chromium's offer has no playout-delay extension: {with}"
    );
    assert_eq!(
        with["answer_playout_delay_id"].as_u64(),
        offered,
        "the answer did not take Chromium's id: {with}"
    );
    let fps = f(&with, &["stats", "fps_decoded"]);
    assert!(
        fps >= 25.0,
        "Chromium decoded {fps} fps, want >= 25: {with}"
    );
    let p50 = f(&with, &["latency_ms", "p50"]);
    assert!(p50 > 0.0 && p50 < 1000.0, "median latency {p50} ms: {with}");
    // With max = 0 Chromium hands each frame to the decoder as soon as it is complete: only
    // packets that carry the extension bring its jitter buffer delay down from its default
    // (its jitter estimate, some ms per frame even on loopback).
    let held_with = f(&with, &["stats", "jitter_buffer_delay_ms"]);
    assert!(
        held_with < 2.5,
        "Chromium held frames {held_with} ms each in its jitter buffer with max = 0: {with}"
    );

    // The node's own page (jitterBufferTarget = 0 where supported) still plays, with a latency.
    let page = clients::browser(&node.url("/"), &["5"], Duration::from_secs(120));
    let pv = page.json();
    println!(
        "chromium page: {} fps, latency {}",
        pv["fps"], pv["pageLatencyText"]
    );
    assert!(page.success, "page viewer failed: {pv}\n{}", page.stderr);
    let fps = pv["fps"].as_f64().unwrap_or(0.0);
    assert!(fps >= 25.0, "the page decoded {fps} fps, want >= 25: {pv}");
    let text = pv["pageLatencyText"].as_str().unwrap_or("");
    assert!(
        text.ends_with(" ms"),
        "the page shows no latency ({text:?}): {pv}"
    );
    drop(node);

    // Without the extension Chromium keeps its own delay.
    let dir = tempfile::tempdir().expect("tempdir");
    let node = node_without_playout_delay(&dir);
    let without = chromium_latency(&node.url("/whep"), 6);
    println!("chromium, playout_delay = false: {}", line(&without));
    assert!(
        without["answer_playout_delay_id"].is_null(),
        "the answer has the extension: {without}"
    );
    let fps = f(&without, &["stats", "fps_decoded"]);
    assert!(fps >= 25.0, "Chromium decoded {fps} fps: {without}");
    let held_without = f(&without, &["stats", "jitter_buffer_delay_ms"]);
    assert!(
        held_without > held_with,
        "Chromium's jitter buffer delay without the extension ({held_without} ms) is not above \
         the one with it ({held_with} ms): the extension changed nothing"
    );
}
