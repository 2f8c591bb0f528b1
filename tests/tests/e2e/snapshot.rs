//! Snapshots: `GET /snapshot.jpg` fetched with curl and checked with ffprobe and ffmpeg (an
//! independent JPEG decoder) at the stream's size; the token as for WHEP; polling costs one
//! encode per interval (read from `/metrics`); `sutantra snapshot FILE` and `-` over the control
//! socket, and the message when no node runs.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::cli;
use crate::node::Node;

/// `curl -D`: (HTTP status, headers as text lowercased) with the body written to `out`.
fn curl_to(url: &str, out: &Path, headers: &[&str]) -> (u16, String) {
    let head = out.with_extension("headers");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "10", "-w", "%{http_code}", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(out);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let o = cmd
        .arg(url)
        .output()
        .expect("run curl (installed by scripts/setup.sh)");
    let code = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    let headers = std::fs::read_to_string(&head)
        .unwrap_or_default()
        .to_ascii_lowercase();
    (code, headers)
}

/// ffprobe's width, height and codec of the picture in `file`, after ffmpeg decoded all of it
/// without an error (`-xerror`: a damaged JPEG fails).
fn probe_jpeg(file: &Path) -> (u64, u64, String) {
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg (installed by scripts/setup.sh)");
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "ffmpeg could not decode {}: {}",
        file.display(),
        String::from_utf8_lossy(&decode.stderr)
    );
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,codec_name",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("run ffprobe (installed by scripts/setup.sh)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ffprobe output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let s = &v["streams"][0];
    (
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        s["codec_name"].as_str().unwrap_or("").to_string(),
    )
}

/// GET as bytes (the node's `Reply` reads text).
fn get_bytes(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let reply = req.call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = reply.status().as_u16();
    let body = reply
        .into_body()
        .read_to_vec()
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, body)
}

#[test]
fn snapshot_jpg_decodes_at_the_stream_size_and_polling_costs_one_encode_per_second() {
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("snap.jpg");
    let (code, headers) = curl_to(&node.url("/snapshot.jpg"), &file, &[]);
    assert_eq!(code, 200, "GET /snapshot.jpg; headers:\n{headers}");
    assert!(
        headers.contains("content-type: image/jpeg"),
        "Content-Type:\n{headers}"
    );
    assert!(
        headers.contains("cache-control: no-store"),
        "Cache-Control:\n{headers}"
    );
    let (w, h, codec) = probe_jpeg(&file);
    assert_eq!((w, h), (640, 480), "the snapshot's size");
    assert_eq!(codec, "mjpeg", "ffprobe's codec for a JPEG");

    // Past the default interval (1 s), then 20 requests as fast as they go: one encode for all
    // of them as long as they fit in one interval.
    thread::sleep(Duration::from_millis(1100));
    let encodes = node
        .metric("sutantra_snapshot_encodes_total")
        .expect("exported");
    let requests = node
        .metric("sutantra_snapshot_requests_total")
        .expect("exported");
    let started = Instant::now();
    let mut first = Vec::new();
    for i in 0..20 {
        let (status, body) = get_bytes(&node.url("/snapshot.jpg"), &[]);
        assert_eq!(status, 200, "request {i}");
        if i == 0 {
            first = body;
        } else {
            assert_eq!(
                body, first,
                "request {i} got other bytes within the interval"
            );
        }
    }
    let took = started.elapsed();
    let m = node.metrics();
    let new_encodes = m["sutantra_snapshot_encodes_total"] - encodes;
    assert_eq!(m["sutantra_snapshot_requests_total"] - requests, 20.0);
    if took < Duration::from_millis(900) {
        assert_eq!(new_encodes, 1.0, "20 requests in {took:?}");
    } else {
        // A loaded machine: still at most one encode per started interval.
        let intervals = took.as_secs_f64().ceil() + 1.0;
        assert!(
            new_encodes <= intervals,
            "{new_encodes} encodes in {took:?}"
        );
    }
    assert_eq!(&first[..2], &[0xff, 0xd8], "a JPEG starts with SOI");
    println!("20 snapshot requests in {took:?}: {new_encodes} encode(s)");
}

#[test]
fn snapshot_needs_the_token_like_whep() {
    let node = Node::start(&["--token", "snap-s3cret"]);
    let r = node.get("/snapshot.jpg");
    assert_eq!(r.status, 401, "without the token: {}", r.body);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    assert!(r.body.contains("Authorization: Bearer"), "{}", r.body);
    let r = node.request(
        "GET",
        "/snapshot.jpg",
        &[("Authorization", "Bearer wrong")],
        None,
    );
    assert_eq!(r.status, 401, "a wrong token: {}", r.body);
    let (status, body) = get_bytes(
        &node.url("/snapshot.jpg"),
        &[("Authorization", "Bearer snap-s3cret")],
    );
    assert_eq!(status, 200);
    assert_eq!(&body[..2], &[0xff, 0xd8], "a JPEG starts with SOI");
    // The unauthorized requests asked for nothing.
    assert_eq!(node.metric("sutantra_snapshot_requests_total"), Some(1.0));
}

#[test]
fn sutantra_snapshot_writes_a_decodable_jpeg() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("cam.jpg");
    let file_arg = file.to_str().expect("utf-8 path");

    // No node yet: exit 3, how to start one, and no file.
    let none = cli(data.path(), &["snapshot", file_arg]);
    assert_eq!(none.code, 3, "{none:?}");
    assert!(none.stderr.contains("no node running"), "{}", none.stderr);
    assert!(!file.exists());

    let node = Node::start_in(data.path(), &[]);
    let o = cli(data.path(), &["snapshot", file_arg]).ok("snapshot FILE");
    assert!(o.stdout.contains("640x480"), "{}", o.stdout);
    let (w, h, _) = probe_jpeg(&file);
    assert_eq!((w, h), (640, 480));
    let size = std::fs::metadata(&file).expect("the file").len();
    assert!(o.stdout.contains(&format!("{size} bytes")), "{}", o.stdout);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(out.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cam.jpg"]);

    // `-`: the JPEG on stdout, the summary on stderr; --quality and --json.
    let std_out = Command::new(crate::node::binary())
        .args(["snapshot", "-", "--quality", "30", "--json", "--data-dir"])
        .arg(data.path())
        .env_remove("SUTANTRA_SOCKET")
        .output()
        .expect("run sutantra snapshot -");
    assert!(std_out.status.success(), "{std_out:?}");
    assert_eq!(&std_out.stdout[..2], &[0xff, 0xd8], "stdout is the JPEG");
    let summary: Value =
        serde_json::from_slice(&std_out.stderr).expect("the --json summary on stderr");
    assert_eq!(summary["quality"], 30);
    assert_eq!(summary["bytes"], std_out.stdout.len());
    let piped = out.path().join("piped.jpg");
    std::fs::write(&piped, &std_out.stdout).expect("write");
    assert_eq!(probe_jpeg(&piped).0, 640);

    let bad = cli(data.path(), &["snapshot", file_arg, "--quality", "0"]);
    assert_eq!(bad.code, 2, "{bad:?}");
    drop(node);
}
