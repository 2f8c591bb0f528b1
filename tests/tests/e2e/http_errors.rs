//! Bad requests get the contract's plain-text 4xx answers, and the node keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::clients;
use crate::node::{Node, Reply};

/// Some SDP-looking text; only its content type matters where it is used.
const SOME_SDP: &str =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n";

fn post(node: &Node, content_type: &str, body: Vec<u8>) -> Reply {
    node.request(
        "POST",
        "/whep",
        &[("Content-Type", content_type)],
        Some(body),
    )
}

fn assert_plain_reason(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "body: {}", r.body);
    let ct = r.header("content-type");
    assert!(
        ct.starts_with("text/plain"),
        "{status} with Content-Type {ct:?}, want text/plain"
    );
    assert!(
        !r.body.trim().is_empty(),
        "{status} without a reason in the body"
    );
}

#[test]
fn bad_sdp_is_400() {
    let node = Node::start(&[]);
    let r = post(
        &node,
        "application/sdp",
        b"this is not an SDP offer\r\n".to_vec(),
    );
    assert_plain_reason(&r, 400);
}

#[test]
fn wrong_content_type_is_415() {
    let node = Node::start(&[]);
    let r = post(&node, "text/plain", SOME_SDP.as_bytes().to_vec());
    assert_plain_reason(&r, 415);
}

#[test]
fn body_over_64_kib_is_413() {
    let node = Node::start(&[]);
    let mut body = SOME_SDP.as_bytes().to_vec();
    body.resize(70 * 1024, b'a');
    let r = post(&node, "application/sdp", body);
    assert_plain_reason(&r, 413);
}

#[test]
fn bearer_token_is_required_when_configured() {
    let node = Node::start(&["--token", "e2e-secret"]);
    let none = post(&node, "application/sdp", SOME_SDP.as_bytes().to_vec());
    assert_plain_reason(&none, 401);
    let wrong = node.request(
        "POST",
        "/whep",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Bearer not-the-secret"),
        ],
        Some(SOME_SDP.as_bytes().to_vec()),
    );
    assert_plain_reason(&wrong, 401);
    assert_eq!(node.healthz()["status"], "ok", "/healthz needs no token");

    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "2", "--token", "e2e-secret"],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert!(
        run.success,
        "viewer with the right token failed: {v}\nstderr:\n{}",
        run.stderr
    );
    let delete = v["delete_status"].as_u64().unwrap_or(0);
    assert!(
        delete == 200 || delete == 204,
        "DELETE with the token answered {delete}: {v}"
    );
}

#[test]
fn options_answers_cors_preflight() {
    let node = Node::start(&[]);
    // The node's own page (its origin); other origins are the `admission` tests' business.
    let own = format!("http://127.0.0.1:{}", node.port);
    let r = node.request(
        "OPTIONS",
        "/whep",
        &[
            ("Origin", &own),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "content-type, authorization",
            ),
        ],
        None,
    );
    assert!(
        r.status == 200 || r.status == 204,
        "OPTIONS /whep: {} {}",
        r.status,
        r.body
    );
    let origin = r.header("access-control-allow-origin");
    assert_eq!(origin, own, "Access-Control-Allow-Origin");
    let has = |name: &str, want: &str| {
        r.header(name)
            .split(',')
            .any(|h| h.trim().eq_ignore_ascii_case(want))
    };
    for method in ["POST", "DELETE"] {
        assert!(
            has("access-control-allow-methods", method),
            "Allow-Methods lacks {method}: {:?}",
            r.headers
        );
    }
    for header in ["content-type", "authorization"] {
        assert!(
            has("access-control-allow-headers", header),
            "Allow-Headers lacks {header}: {:?}",
            r.headers
        );
    }
    assert!(
        has("access-control-expose-headers", "location"),
        "Expose-Headers lacks Location: {:?}",
        r.headers
    );
}

#[test]
fn delete_of_unknown_session_is_404() {
    let node = Node::start(&[]);
    let r = node.request("DELETE", "/whep/no-such-session-0123456789", &[], None);
    assert_eq!(r.status, 404, "body: {}", r.body);
}

/// Sends bytes on a raw connection and reads until the node answers or closes (bounded).
fn raw_tcp(node: &Node, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).expect("connect to the node");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf);
}

#[test]
fn node_survives_bad_requests() {
    let mut node = Node::start(&[]);
    assert_eq!(
        post(&node, "application/sdp", b"garbage".to_vec()).status,
        400
    );
    assert_eq!(
        post(&node, "text/plain", SOME_SDP.as_bytes().to_vec()).status,
        415
    );
    assert_eq!(
        post(&node, "application/sdp", vec![b'v'; 70 * 1024]).status,
        413
    );
    assert_eq!(node.request("DELETE", "/whep/nope", &[], None).status, 404);
    let half_sdp = &SOME_SDP.as_bytes()[..SOME_SDP.len() / 2];
    assert_eq!(
        post(&node, "application/sdp", half_sdp.to_vec()).status,
        400
    );
    raw_tcp(&node, b"NOT HTTP AT ALL\r\n\r\n");
    raw_tcp(
        &node,
        b"POST /whep HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nv=0",
    );

    node.assert_alive();
    let h = node.healthz();
    assert_eq!(h["status"], "ok", "after bad requests: {h}");
    let run = clients::whep(
        &node.url("/whep"),
        &["--seconds", "3"],
        Duration::from_secs(60),
    );
    let v = run.json();
    assert!(
        run.success,
        "viewer after bad requests failed: {v}\nstderr:\n{}",
        run.stderr
    );
    let frames = v["frames"].as_u64().unwrap_or(0);
    assert!(
        frames >= 75,
        "viewer after bad requests decoded {frames} frames in 3 s: {v}"
    );
}
