//! WHEP viewers made with aiortc: frame rate, latency stamps, session end, viewer limit.

use std::time::Duration;

use serde_json::Value;

use crate::clients;
use crate::node::Node;

const SDP: (&str, &str) = ("Content-Type", "application/sdp");

fn u64_of(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
}

/// A viewer's figures on one line, for the test output.
fn figures(v: &Value) -> String {
    let l = &v["latency_ms"];
    format!(
        "{} frames ({} fps) {}x{}, first frame {} ms, latency ms p50 {} p95 {} max {} ({} stamped, \
         stamp_ok {})",
        v["frames"],
        v["fps"],
        v["width"],
        v["height"],
        v["first_frame_ms"],
        l["p50"],
        l["p95"],
        l["max"],
        l["count"],
        v["stamp_ok"]
    )
}

/// The checks every good viewer run passes.
fn assert_viewer(v: &Value, min_frames: u64) {
    assert!(v.get("error").is_none(), "viewer failed: {v}");
    assert_eq!(v["width"], 640, "{v}");
    assert_eq!(v["height"], 480, "{v}");
    let frames = u64_of(v, "frames");
    assert!(
        frames >= min_frames,
        "decoded {frames} frames, want >= {min_frames}: {v}"
    );
    let stamp_ok = v["stamp_ok"].as_f64().unwrap_or(0.0);
    assert!(
        stamp_ok >= 0.9,
        "only {:.0}% of frames carry a readable stamp: {v}",
        stamp_ok * 100.0
    );
    // A sanity bound, far above the real figure: the stamp is the capture time on the same clock.
    let p50 = v["latency_ms"]["p50"].as_f64().unwrap_or(f64::MAX);
    assert!(p50 < 1000.0, "median latency {p50} ms: {v}");
    let delete = u64_of(v, "delete_status");
    assert!(
        delete == 200 || delete == 204,
        "DELETE answered {delete}: {v}"
    );
}

#[test]
fn one_viewer_decodes_30_fps_with_latency_stamps() {
    let node = Node::start(&[]);
    let run = clients::whep(
        &node.url("/whep"),
        &[
            "--seconds",
            "10",
            "--expect-width",
            "640",
            "--expect-height",
            "480",
        ],
        Duration::from_secs(90),
    );
    let v = run.json();
    println!("aiortc viewer: {}", figures(&v));
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    assert_viewer(&v, 280);
}

#[test]
fn two_viewers_at_once_both_decode() {
    let node = Node::start(&[]);
    let run = clients::whep(
        &node.url("/whep"),
        &["--viewers", "2", "--seconds", "10"],
        Duration::from_secs(120),
    );
    let list = run.json();
    let viewers = list
        .as_array()
        .unwrap_or_else(|| panic!("want a JSON list: {list}"));
    assert_eq!(viewers.len(), 2, "{list}");
    for v in viewers {
        println!("aiortc viewer {}: {}", v["viewer"], figures(v));
    }
    assert!(
        run.success,
        "a viewer failed: {list}\nstderr:\n{}",
        run.stderr
    );
    for v in viewers {
        assert_viewer(v, 270);
    }
}

#[test]
fn delete_ends_the_session() {
    let node = Node::start(&[]);
    let url = node.url("/whep");
    let child = clients::spawn_whep(&url, &["--seconds", "4"]);
    node.wait_healthz(
        "viewers == 1 while the aiortc viewer plays",
        Duration::from_secs(30),
        |h| h["viewers"].as_u64() == Some(1),
    );
    let run = clients::finish(child, Duration::from_secs(60), "whep_client.py");
    let v = run.json();
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    let delete = u64_of(&v, "delete_status");
    assert!(
        delete == 200 || delete == 204,
        "DELETE answered {delete}: {v}"
    );
    node.wait_healthz(
        "viewers back to 0 after DELETE",
        Duration::from_secs(10),
        |h| h["viewers"].as_u64() == Some(0),
    );
    let session = v["session"]
        .as_str()
        .unwrap_or_else(|| panic!("no session path: {v}"));
    let again = node.request("DELETE", session, &[], None);
    assert_eq!(
        again.status, 404,
        "a second DELETE of {session}: {}",
        again.body
    );
}

/// The node answers as the DTLS server (`a=setup:passive`): the viewer sends the first flight,
/// which webrtc 0.21 answers at once, where our own ClientHello would wait for the driver's next
/// timer tick (about 200 ms of every viewer's time to first frame; BENCHMARKS.md).
#[test]
fn answer_makes_the_node_the_dtls_server() {
    let node = Node::start(&[]);
    let offer = clients::aiortc_offer(&node.url("/whep"));
    assert!(offer.contains("a=setup:actpass"), "offer: {offer}");
    let answer = node.request("POST", "/whep", &[SDP], Some(offer.into_bytes()));
    assert_eq!(answer.status, 201, "POST: {}", answer.body);
    assert!(
        answer.body.contains("a=setup:passive") && !answer.body.contains("a=setup:active"),
        "answer: {}",
        answer.body
    );
}

#[test]
fn viewer_limit_answers_503_with_retry_after() {
    let node = Node::start(&["--max-viewers", "1"]);
    let url = node.url("/whep");
    let offer = clients::aiortc_offer(&url);
    let child = clients::spawn_whep(&url, &["--seconds", "6"]);
    node.wait_healthz("the first viewer counted", Duration::from_secs(30), |h| {
        h["viewers"].as_u64() == Some(1)
    });

    let refused = node.request("POST", "/whep", &[SDP], Some(offer.clone().into_bytes()));
    assert_eq!(
        refused.status, 503,
        "POST over the limit of 1: {}",
        refused.body
    );
    assert!(
        !refused.header("retry-after").is_empty(),
        "503 without Retry-After: {:?}",
        refused.headers
    );
    assert!(
        !refused.body.trim().is_empty(),
        "503 without a plain-text reason"
    );

    let run = clients::finish(child, Duration::from_secs(60), "whep_client.py");
    let v = run.json();
    assert!(
        run.success,
        "the admitted viewer failed: {v}\nstderr:\n{}",
        run.stderr
    );
    assert!(
        u64_of(&v, "frames") >= 150,
        "the admitted viewer decoded too little: {v}"
    );

    // Its DELETE frees the slot: the next offer is admitted.
    node.wait_healthz("viewers back to 0", Duration::from_secs(10), |h| {
        h["viewers"].as_u64() == Some(0)
    });
    let admitted = node.request("POST", "/whep", &[SDP], Some(offer.into_bytes()));
    assert_eq!(
        admitted.status, 201,
        "POST after the slot was freed: {}",
        admitted.body
    );
    let location = admitted.header("location").to_string();
    assert!(location.starts_with("/whep/"), "Location: {location:?}");
    let end = node.request("DELETE", &location, &[], None);
    assert!(
        end.status == 200 || end.status == 204,
        "DELETE {location}: {}",
        end.status
    );
}

/// A counter from `/metrics`.
fn metric(node: &Node, name: &str) -> f64 {
    let text = node.get("/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[test]
fn pli_from_the_viewer_forces_keyframes() {
    // Keyframe gap far below 0.8 s (the client's PLI spacing) and a keyframe interval far above
    // the test's length: every keyframe after the join comes from a PLI.
    let node = Node::start(&[]);
    let before = metric(&node, "sutantra_keyframes_total");
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "2", "--pli", "3"],
        Duration::from_secs(90),
    );
    let v = run.json();
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    assert_eq!(v["pli_sent"], 3, "{v}");
    let requests = metric(&node, "sutantra_keyframe_requests_total");
    let keyframes = metric(&node, "sutantra_keyframes_total") - before;
    println!("PLI: {requests} requests seen, {keyframes} keyframes since the viewer came");
    assert!(
        requests >= 3.0,
        "the node saw {requests} keyframe requests for 3 PLIs"
    );
    // One keyframe for the join, one per PLI (0.8 s apart, above the 0.5 s rate limit).
    assert!(
        keyframes >= 4.0,
        "{keyframes} keyframes for a join and 3 PLIs"
    );
}

#[test]
fn unreachable_stun_servers_do_not_delay_the_answer() {
    // A STUN "server" on loopback that never answers, plus names that do not resolve here: the
    // answer must still come within about a second, with the host candidates in it.
    let blackhole = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a silent UDP socket");
    let silent = format!("stun:{}", blackhole.local_addr().expect("local addr"));
    let node = Node::start(&[
        "--ice-server",
        &silent,
        "--ice-server",
        "stun:stun.invalid:3478",
        "--ice-server",
        "stun:global.stun.twilio.com:3478",
    ]);
    let offer = clients::aiortc_offer(&node.url("/whep"));
    for attempt in 0..2 {
        let started = std::time::Instant::now();
        let answer = node.request("POST", "/whep", &[SDP], Some(offer.clone().into_bytes()));
        let took = started.elapsed();
        println!("WHEP answer with unreachable STUN servers, attempt {attempt}: {took:?}");
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert!(
            answer.body.contains("typ host") && answer.body.contains("127.0.0.1"),
            "the answer lacks the loopback host candidate:\n{}",
            answer.body
        );
        assert!(
            took < Duration::from_millis(1500),
            "the answer took {took:?} with unreachable STUN servers"
        );
        let location = answer.header("location").to_string();
        node.request("DELETE", &location, &[], None);
    }
}

#[test]
fn fixed_udp_port_range_and_public_address_are_advertised() {
    // A board behind a port forward: a fixed UDP range and a public (1:1 NAT) address. The
    // public address is only written into the answer; no traffic goes to it.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe a free UDP port");
    let low = probe.local_addr().expect("addr").port().clamp(1024, 65_000);
    drop(probe);
    let high = low + 7;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[webrtc]\nudp_port_min = {low}\nudp_port_max = {high}\n\
             public_ips = [\"203.0.113.7\"]\nice_servers = []\n"
        ),
    )
    .expect("write config");
    let config = config.to_string_lossy().to_string();
    let node = Node::start(&["--config", &config]);
    let offer = clients::aiortc_offer(&node.url("/whep"));
    let answer = node.request("POST", "/whep", &[SDP], Some(offer.into_bytes()));
    assert_eq!(answer.status, 201, "{}", answer.body);
    let candidates: Vec<Vec<&str>> = answer
        .body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .map(|c| c.split_whitespace().collect())
        .collect();
    assert!(!candidates.is_empty(), "no candidates:\n{}", answer.body);
    for c in &candidates {
        let port: u16 = c[5].parse().expect("candidate port");
        assert!(
            (low..=high).contains(&port),
            "candidate port {port} outside {low}..={high}: {c:?}"
        );
    }
    let lan: Vec<&Vec<&str>> = candidates
        .iter()
        .filter(|c| {
            c[4].parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .filter(|c| c[4] != "203.0.113.7")
        .collect();
    for c in &lan {
        assert!(
            candidates
                .iter()
                .any(|p| p[4] == "203.0.113.7" && p[5] == c[5]),
            "no public candidate for {c:?}:\n{}",
            answer.body
        );
    }
    println!(
        "fixed range {low}..={high}: {} candidates, {} LAN ones mapped to 203.0.113.7",
        candidates.len(),
        lan.len()
    );
    let location = answer.header("location").to_string();
    node.request("DELETE", &location, &[], None);

    // A real viewer plays through the fixed range.
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "3"],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    assert!(u64_of(&v, "frames") >= 80, "{v}");
}

#[test]
fn lost_packets_are_resent_on_nack() {
    // The viewer drops the first arrival of every 50th packet (2% loss) and NACKs it; the node
    // resends from its bounded history and the picture keeps its 30 fps.
    let node = Node::start(&[]);
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "10", "--drop-every", "50"],
        Duration::from_secs(90),
    );
    let v = run.json();
    assert!(run.success, "viewer failed: {v}\nstderr:\n{}", run.stderr);
    let dropped = u64_of(&v["loss"], "dropped");
    let recovered = u64_of(&v["loss"], "recovered");
    println!(
        "NACK: {dropped} packets dropped at the viewer, {recovered} resent; {}",
        figures(&v)
    );
    assert!(dropped >= 20, "too few packets dropped to judge: {v}");
    // The last few drops may be NACKed after the window closes.
    assert!(
        recovered * 10 >= dropped * 9,
        "only {recovered} of {dropped} dropped packets were resent: {v}"
    );
    assert!(u64_of(&v, "frames") >= 280, "{v}");
}
