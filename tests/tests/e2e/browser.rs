//! The node's own viewer page plays in headless Chromium (driven by Playwright).

use std::time::{Duration, Instant};

use crate::clients;
use crate::node::{Node, workspace};

#[test]
fn viewer_page_is_html() {
    let node = Node::start(&[]);
    let r = node.get("/");
    assert_eq!(r.status, 200, "GET /: {}", r.body);
    assert!(
        r.header("content-type").starts_with("text/html"),
        "GET / Content-Type: {:?}",
        r.header("content-type")
    );
    assert!(
        r.body.contains("<video"),
        "the viewer page has no <video> element"
    );

    // `sutantra run` prints where to watch (on stdout, or in its log on stderr).
    let addr = format!("127.0.0.1:{}", node.port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.output().contains(&addr) {
        assert!(
            Instant::now() < deadline,
            "the node never printed its viewer URL (http://{addr}/)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn page_player_decodes_25_fps_in_chromium() {
    let node = Node::start(&[]);
    let dir = workspace().join("target/e2e");
    std::fs::create_dir_all(&dir).expect("create target/e2e");
    let shot = dir.join("browser.png");
    let shot = shot.to_str().expect("a UTF-8 path");
    let run = clients::browser(
        &node.url("/"),
        &["5", "--screenshot", shot],
        Duration::from_secs(120),
    );
    let v = run.json();
    println!(
        "chromium page: {} fps, {}x{}, {} decoded, {} lost, page latency {}, screenshot {shot}",
        v["fps"],
        v["frameWidth"],
        v["frameHeight"],
        v["framesDecoded"],
        v["packetsLost"],
        v["pageLatencyText"]
    );
    assert!(
        run.success,
        "browser viewer failed: {v}\nstderr:\n{}",
        run.stderr
    );
    let fps = v["fps"].as_f64().unwrap_or(0.0);
    assert!(
        fps >= 25.0,
        "page decoded {fps} fps over 5 s, want >= 25: {v}"
    );
    assert_eq!(v["frameWidth"], 640, "{v}");
    assert_eq!(v["frameHeight"], 480, "{v}");
}
