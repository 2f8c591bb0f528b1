//! `/healthz` JSON fields and `/metrics` Prometheus text.

use std::time::Duration;

use serde_json::Value;

use crate::node::Node;

#[test]
fn healthz_fields_are_present_and_typed() {
    let node = Node::start(&[]);
    let h = node.healthz();
    assert_eq!(h["status"], "ok", "{h}");
    let source = h["source"]
        .as_str()
        .unwrap_or_else(|| panic!("`source` is not a string: {h}"));
    assert!(
        source.contains("test-pattern"),
        "source {source:?} for --source test-pattern"
    );
    let fps = h["fps"]
        .as_f64()
        .unwrap_or_else(|| panic!("`fps` is not a number: {h}"));
    assert!((0.0..=120.0).contains(&fps), "fps {fps}: {h}");
    assert_eq!(
        h["viewers"].as_u64(),
        Some(0),
        "`viewers` is not 0 with nobody watching: {h}"
    );
    let sent = h["frames_sent"]
        .as_u64()
        .unwrap_or_else(|| panic!("`frames_sent` is not an integer: {h}"));
    let up = h["uptime_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("`uptime_s` is not a number: {h}"));
    assert!(up >= 0.0, "uptime_s {up}");

    // Frames keep flowing (about 30 a second, so `fps` reaches 20+ once measured) and the uptime
    // grows (it may count whole seconds).
    node.wait_healthz(
        "frames_sent +30 and uptime_s to grow",
        Duration::from_secs(10),
        |now: &Value| {
            now["frames_sent"].as_u64().is_some_and(|n| n >= sent + 30)
                && now["uptime_s"].as_f64().is_some_and(|u| u > up)
                && now["fps"].as_f64().is_some_and(|f| f >= 20.0)
        },
    );
}

/// One sample line of the Prometheus text format: `name{labels} value [timestamp]`.
fn sample(line: &str) -> Option<(&str, f64)> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[line.rfind('}')? + 1..]),
        None => line.split_once(char::is_whitespace)?,
    };
    let valid = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    (valid && !name.is_empty()).then_some((name, value))
}

#[test]
fn metrics_is_prometheus_text() {
    let node = Node::start(&[]);
    let r = node.get("/metrics");
    assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
    let ct = r.header("content-type");
    assert!(ct.starts_with("text/plain"), "/metrics Content-Type {ct:?}");
    let mut frames_sent = None;
    for line in r
        .body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, value) =
            sample(line).unwrap_or_else(|| panic!("not a Prometheus sample line: {line:?}"));
        if name == "sutantra_frames_sent_total" {
            frames_sent = Some(value);
        }
    }
    let n = frames_sent
        .unwrap_or_else(|| panic!("no sutantra_frames_sent_total sample in:\n{}", r.body));
    assert!(
        n > 0.0,
        "sutantra_frames_sent_total is {n} on a healthy node"
    );
}
