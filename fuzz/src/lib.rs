//! `sutantra-fuzz`: the fuzz harnesses of the node, one public function per target, each feeding
//! the bytes it is given to the real parser or entry point of the node, the way the node reaches
//! it from the outside (an HTTP body, a socket line, a serial byte stream, a file, a datagram).
//!
//! A harness never panics for any input: a panic (or an abort) is a bug found. Where it is
//! cheap, a harness also asserts an invariant of what was parsed (a round trip, a bound the
//! module promises). The libFuzzer entry points in `fuzz_targets/` (feature `libfuzzer`,
//! nightly, `scripts/fuzz.sh`) only call these; on stable, the tests in `replay` run every
//! seed and every crash input ever found through them (`cargo test --workspace`).
//!
//! Input layouts (all harnesses take any bytes; these are what the seeds use):
//! - several inputs in one: parts separated by a `0xFF` byte (never in UTF-8 text or JSON);
//! - `whip_http`: line 1 the status, then header lines, an empty line, the body;
//! - `config_set`: line 1 the key, line 2 the value, the rest the file;
//! - binary targets (`chain_rpc`, `convert`, `mjpeg`, `rtcp_feedback`, `store_open`): a few leading
//!   bytes choose the call, sizes or mutations, the rest is the payload;
//! - `relay_rtp`: packets split at `0xFF`; in each, byte 0 holds flags (marker, upstream changed
//!   before it, which of two SSRCs), bytes 1-2 the sequence number, 3-6 the timestamp, 7 the
//!   milliseconds since the previous packet, the rest the VP8 payload.

mod support;

#[cfg(test)]
mod replay;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A harness: takes any bytes, never panics.
pub type Harness = fn(&[u8]);

/// Every target: its name (the `fuzz_targets/` file, the corpus and artifact folders) and its
/// harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("whep_offer", whep_offer),
    ("whip_http", whip_http),
    ("control_request", control_request),
    ("console_line", console_line),
    ("config_file", config_file),
    ("config_set", config_set),
    ("chain_rpc", chain_rpc),
    ("light_block", light_block),
    ("attest_record", attest_record),
    ("attest_export", attest_export),
    ("store_open", store_open),
    ("y4m", y4m),
    ("convert", convert),
    ("mjpeg", mjpeg),
    ("rtcp_feedback", rtcp_feedback),
    ("relay_rtp", relay_rtp),
];

/// Splits `data` at every `0xFF` byte.
fn parts(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0xff).collect()
}

// ---- (1) WHEP: offer -> check_offer -> remote description -> answer ----------------------------

/// The node's viewer sessions, as `sutantra run` builds them, bound to loopback only.
fn viewers() -> &'static Arc<sutantra::webrtc::whep::Viewers> {
    static VIEWERS: OnceLock<Arc<sutantra::webrtc::whep::Viewers>> = OnceLock::new();
    VIEWERS.get_or_init(|| {
        let cfg = sutantra::config::WebRtcConfig {
            bind_addrs: vec![std::net::IpAddr::from([127, 0, 0, 1])],
            gather_timeout_ms: 500,
            ..Default::default()
        };
        let fanout = sutantra::media::SharedFanout::new(cfg.max_viewers, cfg.viewer_queue_packets)
            .unwrap_or_else(|e| panic!("fuzz harness: fan-out: {e}"));
        let stats = Arc::new(sutantra::stats::Stats::new());
        let _rt = support::runtime().enter();
        Arc::new(sutantra::webrtc::whep::Viewers::new(
            cfg,
            Arc::new(fanout),
            stats,
        ))
    })
}

/// `POST /whep`: the body (UTF-8, as the route requires) answered by the node's own
/// [`Viewers::offer`](sutantra::webrtc::whep::Viewers::offer): `check_offer`, a peer connection
/// built by `PeerSpec::viewer` with the keyframe forwarder, the remote description, the answer,
/// ICE gathering on loopback. Every session is ended again; none may be left behind.
pub fn whep_offer(data: &[u8]) {
    whep_answer(data);
}

/// [`whep_offer`]; true when the offer was answered.
fn whep_answer(data: &[u8]) -> bool {
    use sutantra::webrtc::whep::{SessionError, check_offer};
    let Ok(sdp) = std::str::from_utf8(data) else {
        return false;
    };
    let _guard = support::lock();
    let viewers = viewers();
    let checked = check_offer(sdp);
    let rt = support::runtime();
    let answered = match rt.block_on(viewers.offer(sdp.to_string())) {
        Ok((id, answer)) => {
            assert!(
                checked.is_ok(),
                "answered an offer that check_offer refuses: {checked:?}"
            );
            assert!(
                answer.starts_with("v=0"),
                "the answer is not SDP: {answer:.80}"
            );
            assert!(
                rt.block_on(viewers.end(&id)),
                "the answered session is gone"
            );
            true
        }
        Err(e @ (SessionError::Full(_) | SessionError::Busy(_))) => {
            panic!("a lone offer was refused for capacity (sessions leak?): {e}")
        }
        Err(e) => {
            let _ = e.to_string();
            false
        }
    };
    assert_eq!(viewers.count(), 0, "a session outlived its offer");
    answered
}

// ---- (2) WHIP: the POST's answer, Location and Link headers ------------------------------------

/// The offer the WHIP harness posts (the server ignores it).
const WHIP_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n";

/// A WHIP endpoint's answer to the node's POST: line 1 the status, then header lines, an empty
/// line and the body, served on loopback and read by the node's own
/// [`post_offer`](sutantra::webrtc::whip::whip_http::post_offer) (redirects, `Location`
/// resolution, `Link` ICE servers, the body limit, the same-origin rule). `Location` headers that
/// would lead off loopback are dropped, so the harness never reaches the network; `resolve` and
/// `parse_link_ice_servers` also see every header value directly.
pub fn whip_http(data: &[u8]) {
    use sutantra::outbound::Origin;
    use sutantra::webrtc::whip::whip_http::{parse_link_ice_servers, post_offer, resolve};

    let mut lines = data.split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let Some(status) = std::str::from_utf8(status_line)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
    else {
        return;
    };
    let _guard = support::lock();
    let http = support::http();
    let endpoint = format!("{}/whip/endpoint", http.base());
    let home = Origin::of(&endpoint);
    let mut head = format!("HTTP/1.1 {status} Fuzz\r\n").into_bytes();
    let mut links = 0usize;
    let mut consumed = status_line.len() + 1;
    for line in lines.by_ref() {
        consumed += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if let Some((name, value)) = text.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("link") {
                links += 1;
                let servers = parse_link_ice_servers(value);
                assert!(servers.len() <= 8, "more than 8 ICE servers from one Link");
                for s in &servers {
                    let lower = s.url.to_ascii_lowercase();
                    assert!(
                        s.url.len() <= 512
                            && ["stun:", "stuns:", "turn:", "turns:"]
                                .iter()
                                .any(|p| lower.starts_with(p)),
                        "a Link ICE server that is not a STUN/TURN URL: {:?}",
                        s.url
                    );
                }
            }
            if name.eq_ignore_ascii_case("location") {
                let resolved = resolve(&endpoint, value);
                if let Some(r) = &resolved {
                    let lower = r.to_ascii_lowercase();
                    assert!(
                        lower.starts_with("http://") || lower.starts_with("https://"),
                        "resolve gave a non-HTTP URL: {r:?}"
                    );
                }
                // Only loopback redirects are followed: the harness stays off the network.
                let local = resolved.as_deref().and_then(Origin::of) == home
                    && resolved
                        .as_deref()
                        .is_some_and(|r| r.contains(&http.base()[7..]));
                if !local {
                    continue;
                }
            }
        }
        head.extend_from_slice(line);
        head.extend_from_slice(b"\r\n");
    }
    let body = data.get(consumed..).unwrap_or_default().to_vec();
    head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    head.extend_from_slice(&body);
    http.set(move |_| head.clone());

    match post_offer(
        &endpoint,
        Some("fuzz-token"),
        None,
        WHIP_OFFER,
        Duration::from_secs(2),
    ) {
        Ok(created) => {
            assert!(created.answer.trim_start().starts_with("v=0"));
            assert!(created.ice_servers.len() <= 8 * links);
            if let Some(resource) = &created.resource {
                assert_eq!(
                    Origin::of(resource),
                    Origin::of(&created.endpoint),
                    "a session resource on another origin than its endpoint"
                );
            }
        }
        Err(e) => {
            let _ = (e.class(), e.is_auth(), e.to_string());
        }
    }
}

// ---- (3) the control socket -----------------------------------------------------------------

/// A connection's bytes on the control socket, read line by line with the server's own
/// [`read_line`](sutantra::ops::control::proto::read_line) and decoded as requests (and, for the
/// client side, as responses). A decoded request encodes and decodes back to itself.
pub fn control_request(data: &[u8]) {
    use sutantra::ops::control::proto::{MAX_MESSAGE, Request, Response, read_line};
    fn one(line: &[u8]) {
        if let Ok(req) = Request::decode(line) {
            let encoded = req.encode();
            assert!(encoded.len() <= MAX_MESSAGE + 64 && encoded.ends_with(b"\n"));
            let again = Request::decode(&encoded[..encoded.len() - 1])
                .unwrap_or_else(|e| panic!("{req:?} does not decode from its encoding: {e}"));
            assert_eq!(again, req, "request round trip");
        }
        if let Ok(resp) = Response::decode(line) {
            let encoded = resp.encode();
            assert!(encoded.len() <= MAX_MESSAGE && encoded.ends_with(b"\n"));
            if let Err(e) = Response::decode(&encoded[..encoded.len() - 1]) {
                panic!("{resp:?} does not decode from its encoding: {e}");
            }
        }
    }
    one(data);
    support::runtime().block_on(async {
        let mut reader = tokio::io::BufReader::with_capacity(256, data);
        let mut buf = Vec::new();
        while let Ok(true) = read_line(&mut reader, &mut buf).await {
            assert!(buf.len() <= MAX_MESSAGE, "read_line passed its cap");
            one(&buf);
        }
    });
}

// ---- (4) the serial console -------------------------------------------------------------------

/// Bytes from the serial line, fed one by one to the console's
/// [`LineEditor`](sutantra::cli::console::line::LineEditor); every finished line goes through
/// `split_words`, the CLI's clap parser and the console's allow-list, as `run_line` does (nothing
/// runs). Words survive a round trip through single quotes.
pub fn console_line(data: &[u8]) {
    use clap::Parser as _;
    use sutantra::cli::console::line::{Event, LineEditor, MAX_LINE, split_words};
    let mut editor = LineEditor::default();
    let mut echo = Vec::new();
    for &b in data {
        echo.clear();
        let event = editor.feed(b, &mut echo);
        // At most: erasing a whole line (Ctrl-U), three bytes per character.
        assert!(
            echo.len() <= 3 * MAX_LINE + 8,
            "one byte echoed {} bytes",
            echo.len()
        );
        let Some(Event::Line(line)) = event else {
            continue;
        };
        // MAX_LINE bytes kept; the String is their lossy UTF-8 (an invalid byte becomes U+FFFD).
        assert!(
            line.chars().count() <= MAX_LINE,
            "a line over MAX_LINE was kept"
        );
        let Ok(words) = split_words(&line) else {
            continue;
        };
        let quoted: Vec<String> = words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
            .collect();
        assert_eq!(
            split_words(&quoted.join(" ")).as_ref(),
            Ok(&words),
            "quoted words do not split back"
        );
        let argv = std::iter::once("sutantra").chain(words.iter().map(String::as_str));
        match sutantra::cli::Cli::try_parse_from(argv) {
            Ok(cli) => {
                let _ = sutantra::cli::console::policy::admit(
                    &cli.command,
                    &words,
                    Path::new("/nonexistent/sutantra-data"),
                );
            }
            Err(e) => {
                let _ = e.render().to_string();
            }
        }
    }
}

// ---- (5, 6) configuration -------------------------------------------------------------------

/// A configuration file (UTF-8, as `Config::load` reads it) through `Config::parse`: TOML, then
/// `validate`. An error points at a line of the file.
pub fn config_file(data: &[u8]) {
    use sutantra::config::Config;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fuzz.toml") {
        Ok(cfg) => {
            assert_eq!(cfg.validate(), Ok(()), "parse accepted an invalid config");
            let _ = cfg.source_spec();
        }
        Err(e) => {
            assert!(
                e.line <= text.lines().count() + 1,
                "error at line {} of a {}-line file",
                e.line,
                text.lines().count()
            );
            let _ = e.to_string();
        }
    }
}

/// `sutantra config set KEY VALUE --file`: line 1 the key, line 2 the value, the rest the file.
/// What `set_key` returns is a valid configuration, and setting the same value again changes
/// nothing.
pub fn config_set(data: &[u8]) {
    use sutantra::config::Config;
    use sutantra::config::edit::set_key;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut it = text.splitn(3, '\n');
    let (key, value, file) = (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    );
    match set_key(file, "fuzz.toml", key, value) {
        Ok(new) => {
            if let Err(e) = Config::parse(&new, "fuzz.toml") {
                panic!("set_key returned an invalid file: {e}");
            }
            match set_key(&new, "fuzz.toml", key, value) {
                Ok(again) => assert_eq!(again, new, "setting the same value twice differs"),
                Err(e) => panic!("setting the same value again fails: {e}"),
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ---- (7) CometBFT RPC results ---------------------------------------------------------------

/// A CometBFT RPC server's answers, read by the node's own
/// [`RpcClient`](sutantra::validator::chain::rpc::RpcClient) over loopback. Byte 0: the call
/// (`% 4`: status, commit at 10, validators at 10, broadcast_tx_sync), bit 2 a 500 status, bit 3
/// no `Content-Length`; byte 1: the byte budget (`64 << low nibble`) and `max_validators`
/// (`1 + 100 * high nibble`); the rest: the bodies, one per page, separated by `0xFF`.
pub fn chain_rpc(data: &[u8]) {
    use sutantra::validator::chain::rpc::RpcClient;
    let [op, sizes, rest @ ..] = data else {
        return;
    };
    let (op, sizes) = (*op, *sizes);
    let status = if op & 4 != 0 {
        "500 Internal"
    } else {
        "200 OK"
    };
    let with_len = op & 8 == 0;
    let max_bytes = 64u64 << (sizes & 0x0f);
    let max_validators = 1 + usize::from(sizes >> 4) * 100;
    let pages: Vec<Vec<u8>> = parts(rest).into_iter().map(<[u8]>::to_vec).collect();

    let _guard = support::lock();
    let http = support::http();
    http.set(move |path| {
        let page = path
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("page="))
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1);
        let body = &pages[page.clamp(1, pages.len()) - 1];
        let mut out = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\n");
        if with_len {
            out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    });
    let client = RpcClient::new(&http.base(), max_bytes, Duration::from_secs(2));
    match op % 4 {
        0 => {
            let _ = client.status().map_err(|e| e.to_string());
        }
        1 => {
            if let Ok(c) = client.commit(10) {
                assert_eq!(c.height, 10);
                assert_eq!(c.signed_header.header.height.value(), 10);
                let _ = c.to_json();
            }
        }
        2 => {
            if let Ok(v) = client.validators(10, max_validators) {
                assert_eq!(v.height, 10);
                assert!(!v.validators.is_empty() && v.validators.len() <= max_validators);
                let _ = v.to_json();
            }
        }
        _ => {
            if let Ok(b) = client.broadcast_tx_sync(b"fuzz=1") {
                assert!(b.log.chars().count() <= 1000 && b.hash.chars().count() <= 1000);
            }
        }
    }
}

// ---- (8) light blocks ---------------------------------------------------------------------

/// A model-based test vector's trusted state, its first step's time and block (the reference the
/// one-part mode verifies against).
fn light_reference() -> &'static (
    sutantra_chain::light::TrustedState,
    sutantra_chain::light::Time,
) {
    static REF: OnceLock<(
        sutantra_chain::light::TrustedState,
        sutantra_chain::light::Time,
    )> = OnceLock::new();
    REF.get_or_init(|| {
        let v: serde_json::Value = serde_json::from_slice(include_bytes!(
            "../../tests/data/cometbft/single_step/MC4_4_faulty_TestSuccess.json"
        ))
        .unwrap_or_else(|e| panic!("fuzz harness: vector: {e}"));
        let trusted = sutantra_chain::light::parse_trusted(v["initial"].to_string().as_bytes())
            .unwrap_or_else(|e| panic!("fuzz harness: vector's trusted state: {e}"));
        let now = sutantra_chain::light::parse_time(v["input"][0]["now"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| panic!("fuzz harness: vector's time: {e}"));
        (trusted, now)
    })
}

/// The verdict's first line is one of the contract's three, on one line.
fn check_verdict(v: &sutantra_chain::light::Verdict) {
    let s = v.to_string();
    assert!(!s.contains('\n'), "a verdict over two lines: {s:?}");
    assert!(
        s == "SUCCESS" || s == "NOT_ENOUGH_TRUST" || s.starts_with("INVALID: "),
        "not a verdict: {s:?}"
    );
}

/// Light blocks and the verification step. One part: a light block (and, as a trusted state)
/// verified against a test vector's trusted state; two parts: trusted state and untrusted block;
/// three parts: the `/commit`, `/validators` at H and H+1 answers (`light_block_from_rpc`).
pub fn light_block(data: &[u8]) {
    use sutantra_chain::light::{
        ParseLimits, VerifyOptions, header_hash, light_block_from_rpc, parse_light_block,
        parse_trusted, validator_set_hash, verify_commit, verify_step,
    };
    let opts = VerifyOptions {
        trusting_period: Duration::from_secs(20 * 365 * 24 * 3600),
        ..VerifyOptions::default()
    };
    let (reference, reference_now) = light_reference();
    let block = match parts(data).as_slice() {
        [one] => {
            if let Ok(t) = parse_trusted(one) {
                let _ = (t.height(), t.header_hash(), t.time());
            }
            parse_light_block(one)
                .ok()
                .map(|b| (reference.clone(), b, *reference_now))
        }
        [t, u] => match (parse_trusted(t), parse_light_block(u)) {
            (Ok(t), Ok(u)) => {
                let now = u
                    .signed_header
                    .header
                    .time
                    .checked_add(Duration::from_secs(1))
                    .unwrap_or(u.signed_header.header.time);
                Some((t, u, now))
            }
            _ => None,
        },
        [c, v, n, ..] => light_block_from_rpc(c, v, n, &ParseLimits::default())
            .ok()
            .map(|b| (reference.clone(), b, *reference_now)),
        [] => None,
    };
    let Some((trusted, untrusted, now)) = block else {
        return;
    };
    let _ = (
        header_hash(&untrusted),
        validator_set_hash(&untrusted.validators),
    );
    check_verdict(&verify_commit(
        &untrusted.signed_header,
        &untrusted.validators,
    ));
    check_verdict(&verify_step(&trusted, &untrusted, &opts, now));
}

// ---- (9, 10) attestations -------------------------------------------------------------------

/// Attestation records as received from anywhere: one record (it re-encodes to the same bytes,
/// and its own anchor checks out), then the input as a chain of records, each prefixed by its
/// length byte (`verify_chain` over what decodes).
pub fn attest_record(data: &[u8]) {
    use sutantra_chain::attest::{SignedAttestation, check_anchor, verify_chain};
    if let Ok(s) = SignedAttestation::from_bytes(data) {
        assert_eq!(
            s.to_bytes(),
            data,
            "a decoded record re-encodes differently"
        );
        let _ = (s.verify(), s.hash(), s.node_id());
        let a = &s.attestation;
        assert!(
            check_anchor(a, a.anchor_height, a.anchor_hash, &a.chain_id).is_ok(),
            "a record does not match its own anchor"
        );
        let _ = verify_chain(std::slice::from_ref(&s));
    }
    let mut list = Vec::new();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (record, next) = tail.split_at(len);
        match SignedAttestation::from_bytes(record) {
            Ok(s) => list.push(s),
            Err(e) => {
                let _ = e.to_string();
            }
        }
        rest = next;
    }
    if !list.is_empty() {
        let _ = verify_chain(&list).map_err(|e| e.to_string());
    }
}

/// `sutantra attest verify FILE [--header FILE]`: the export file's bytes, optionally `0xFF` and
/// the header file's bytes, through [`verify_export`](sutantra::cli::attest::verify_export).
pub fn attest_export(data: &[u8]) {
    let mut it = data.splitn(2, |&b| b == 0xff);
    let export = it.next().unwrap_or_default();
    let header = it.next();
    if let Ok(v) = sutantra::cli::attest::verify_export(export, header) {
        assert_eq!(v["ok"], true);
        assert!(v["count"].as_u64().is_some_and(|n| n >= 1));
    }
}

// ---- (11) the store -------------------------------------------------------------------------

/// A valid `node.redb` (chain bound, a trusted block, three attestations, one halted flag),
/// written once.
fn seed_store() -> &'static Vec<u8> {
    use sutantra::validator::store::{STORE_FILE, Store};
    use sutantra_chain::attest::{AttestationChain, Segment};
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let dir = support::scratch("store-seed");
        let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
            panic!("fuzz harness: seed store: {what}: {e}")
        };
        {
            let store = Store::open(&dir, Duration::ZERO).unwrap_or_else(|e| fail("open", &e));
            store
                .bind_chain("fuzz-chain", "10:00")
                .unwrap_or_else(|e| fail("bind", &e));
            let block = include_bytes!(
                "../../tests/data/cometbft/kvstore_v0_38/incoming/commit_at_height_10.json"
            );
            store
                .put_trusted(10, block, 4, 1_700_000_000)
                .unwrap_or_else(|e| fail("put_trusted", &e));
            let key = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([5; 32]));
            let mut chain = AttestationChain::new("fuzz-chain", "camera0", 0, [0; 32])
                .unwrap_or_else(|e| fail("chain", &e));
            for i in 0..3u64 {
                let seg = Segment {
                    first_rtp_ts: 90_000 * i as u32,
                    last_rtp_ts: 90_000 * i as u32 + 87_000,
                    first_capture_us: 1_700_000_000_000_000 + i,
                    last_capture_us: 1_700_000_000_900_000 + i,
                    frame_count: 30,
                    byte_count: 40_000,
                    merkle_root: [i as u8; 32],
                };
                let s = chain.attest(&seg, 10, [1; 32], &key);
                store
                    .append_attestation(i, s.hash(), &s.to_bytes(), 16, 1_700_000_000 + i)
                    .unwrap_or_else(|e| fail("append", &e));
            }
            store
                .set_halted("fuzz: a witness disagreed", 1_700_000_100)
                .unwrap_or_else(|e| fail("halt", &e));
        }
        let bytes =
            std::fs::read(dir.join(STORE_FILE)).unwrap_or_else(|e| fail("read the file", &e));
        support::remove(&dir);
        bytes
    })
}

/// Reads everything a store holds, as `chain status`, `attest list` and the node do.
fn read_store(store: &sutantra::validator::store::Store) {
    let _ = store.meta().map_err(|e| e.to_string());
    let _ = store.latest_trusted();
    let _ = store.trusted_heights();
    let _ = store.trusted_at(10);
    if let Ok(list) = store.outbox(0, u64::MAX) {
        for e in list {
            let _ = sutantra_chain::attest::SignedAttestation::from_bytes(&e.signed);
            let _ = e.status.name();
        }
    }
    let _ = store.outbox_entry(1);
    let _ = store.oldest_pending();
    let _ = store.pending_count();
    let _ = store.outbox_len();
}

/// The seed store with `data`'s mutations applied (see [`store_open`]).
fn damaged_store(data: &[u8]) -> Vec<u8> {
    let mut bytes = seed_store().clone();
    for op in data.chunks_exact(5).take(64) {
        if bytes.is_empty() {
            break;
        }
        let pos = u32::from_le_bytes([op[1], op[2], op[3], op[4]]) as usize % bytes.len();
        match op[0] {
            0 => bytes.truncate(pos),
            x => bytes[pos] ^= x,
        }
    }
    bytes
}

/// Lets a panic of redb's own code inside a store operation unwind to the store, which turns it
/// into `StoreError::Corrupt` (`validator::store::contain`): libFuzzer's panic hook aborts on
/// every panic, before unwinding, so without this every such input would count as a crash. Any
/// other panic (in our code, or in redb outside a store operation) still goes to the previous
/// hook: a crash.
fn let_store_contain_redb_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_redb = info.location().is_some_and(|l| {
                // The registry's redb-4.x, or the patched copy in vendor/redb.
                let f = l.file().replace('\\', "/");
                f.contains("/redb-") || f.contains("vendor/redb/")
            });
            if in_redb && sutantra::validator::store::catching_panics() {
                return;
            }
            previous(info);
        }));
    });
}

/// A damaged `node.redb`: the valid seed store with the input's mutations applied (5 bytes
/// each: a kind, then a little-endian position modulo the length; kind 0 truncates there, any
/// other kind XORs the byte there with it), opened read-only as the CLI does (which repairs
/// through a writable open when needed), then opened for writing as the node does, and read.
/// Must give errors, never a panic or an abort: redb panics on some damaged files, and the store
/// turns those into errors (see `let_store_contain_redb_panics`).
pub fn store_open(data: &[u8]) {
    use sutantra::validator::store::{STORE_FILE, Store};
    let_store_contain_redb_panics();
    let _guard = support::lock();
    let bytes = damaged_store(data);
    let dir = support::scratch("store");
    if std::fs::write(dir.join(STORE_FILE), &bytes).is_ok() {
        match Store::open_read_only(&dir) {
            Ok(Some(store)) => read_store(&store),
            Ok(None) => panic!("the store file exists but open_read_only found none"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
        match Store::open(&dir, Duration::ZERO) {
            Ok(store) => read_store(&store),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    support::remove(&dir);
}

// ---- (12, 13) camera input ------------------------------------------------------------------

/// A `.y4m` file played by the HAL's [`Y4mSource`](sutantra_hal::camera::y4m::Y4mSource): open
/// (header, first frame complete), then three captures (looping at the end). Frame 0 must be
/// readable once `open` accepted the file.
pub fn y4m(data: &[u8]) {
    use sutantra_hal::camera::y4m::{MAX_DIMENSION, Y4mSource};
    use sutantra_hal::camera::{FixedClock, FrameSource};
    let _guard = support::lock();
    let dir = support::scratch("y4m");
    let path = dir.join("clip.y4m");
    if std::fs::write(&path, data).is_ok() {
        match Y4mSource::open(&path) {
            Ok(mut src) => {
                let info = src.info();
                assert!(info.width >= 1 && info.width <= MAX_DIMENSION);
                assert!(info.height >= 1 && info.height <= MAX_DIMENSION);
                assert!(info.fps_num > 0 && info.fps_den > 0, "a zero frame rate");
                let mut frame =
                    sutantra_core::frame::I420Frame::new_unfilled(info.width, info.height);
                for i in 0..3 {
                    let got = src.capture(&mut frame, &FixedClock(1));
                    if i == 0
                        && let Err(e) = got
                    {
                        panic!("open accepted the file but frame 0 fails: {e}");
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    support::remove(&dir);
}

/// The pixel-format converters with a chosen format (byte 0), width and height (bytes 1-4,
/// little-endian, modulo 300), stride (bytes 5-6) and a destination of the right or a wrong
/// size (byte 7, bit 0); the rest is the picture. A conversion that succeeds was given enough
/// bytes and a wide enough stride.
pub fn convert(data: &[u8]) {
    use sutantra_hal::camera::convert::PixelFormat;
    let [f, w0, w1, h0, h1, s0, s1, d, src @ ..] = data else {
        return;
    };
    let format = PixelFormat::PREFERENCE[usize::from(*f) % PixelFormat::PREFERENCE.len()];
    let width = u32::from(u16::from_le_bytes([*w0, *w1]) % 300);
    let height = u32::from(u16::from_le_bytes([*h0, *h1]) % 300);
    let stride = usize::from(u16::from_le_bytes([*s0, *s1]));
    let (dw, dh) = if d & 1 == 0 {
        (width, height)
    } else {
        (width ^ 1, height)
    };
    let mut dst = sutantra_core::frame::I420Frame::new_unfilled(dw, dh);
    match format.to_i420(src, stride, width, height, &mut dst) {
        Ok(()) => {
            assert!(width > 0 && height > 0 && (dw, dh) == (width, height));
            assert!(
                stride >= format.min_stride(width),
                "{format}: stride below a row"
            );
            assert!(
                src.len() >= stride * (height as usize - 1) + format.min_stride(width),
                "{format}: converted from fewer bytes than the rows need"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The MJPEG decoder (a camera's JPEG frame to I420) at a chosen size (bytes 0-3: width and
/// height, little-endian, modulo 400, at least 1); the rest is the frame, decoded twice (the
/// decoder keeps its buffers between frames). A frame that does not decode is a `CorruptFrame`
/// error, never another kind, and the second decode of the same bytes gives the same answer.
pub fn mjpeg(data: &[u8]) {
    use sutantra_hal::camera::ErrorKind;
    use sutantra_hal::camera::mjpeg::MjpegDecoder;
    let [w0, w1, h0, h1, jpeg @ ..] = data else {
        return;
    };
    let width = u32::from(u16::from_le_bytes([*w0, *w1]) % 400).max(1);
    let height = u32::from(u16::from_le_bytes([*h0, *h1]) % 400).max(1);
    let Ok(mut decoder) = MjpegDecoder::new(width, height) else {
        return;
    };
    let mut frame = sutantra_core::frame::I420Frame::new_unfilled(width, height);
    let first = decoder
        .decode(jpeg, &mut frame)
        .map(|()| frame.data().to_vec());
    let second = decoder
        .decode(jpeg, &mut frame)
        .map(|()| frame.data().to_vec());
    match (first, second) {
        (Ok(a), Ok(b)) => assert!(a == b, "two decodes of one frame differ"),
        (Err(a), Err(b)) => {
            assert_eq!(a.kind(), ErrorKind::CorruptFrame, "{a}");
            assert_eq!(b.kind(), ErrorKind::CorruptFrame, "{b}");
        }
        (a, b) => panic!(
            "two decodes of one frame disagree: {:?} / {:?}",
            a.err(),
            b.err()
        ),
    }
}

// ---- (14) RTCP feedback ---------------------------------------------------------------------

/// An inbound RTCP datagram (after 8 bytes: our SSRC and the arrival time, NTP middle 32):
/// parsed as `webrtc` does, then what the WHIP publisher reads of it (keyframe requests, REMB,
/// receiver reports), then through the interceptor chain with the viewers' keyframe forwarder
/// (exactly the datagrams with a PLI or FIR reach the application) and with the publisher's
/// forwarder (TWCC feedback counted).
pub fn rtcp_feedback(data: &[u8]) {
    use rtc::interceptor::{AttributedPacket, Packet, Registry, TaggedPacket};
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
    use rtc::sansio::Protocol;
    use sutantra::webrtc::keyframe::{CcSink, KeyframeRequestForwarder, SLOT, is_keyframe_request};
    use sutantra::webrtc::whip::feedback;

    let [a, b, c, d, e, f, g, h, raw @ ..] = data else {
        return;
    };
    let ssrc = u32::from_be_bytes([*a, *b, *c, *d]);
    let arrival = u32::from_be_bytes([*e, *f, *g, *h]);
    let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &raw[..]) else {
        return;
    };
    let mut keyframe = false;
    for p in &packets {
        keyframe |= is_keyframe_request(p.as_ref());
        if let Some(kbps) = feedback::remb_kbps(p.as_ref()) {
            assert!(kbps >= 1);
        }
        if let Some(r) = feedback::report_about(p.as_ref(), ssrc, arrival) {
            assert!((0.0..1.0).contains(&r.fraction_lost));
            assert!(r.rtt.is_none_or(|rtt| rtt < Duration::from_secs(60)));
        }
    }
    let twcc = packets
        .iter()
        .filter(|p| p.as_ref().as_any().is::<TransportLayerCc>())
        .count() as u64;
    let tagged = |packets: Vec<Box<dyn rtc::rtcp::Packet>>| TaggedPacket {
        now: std::time::Instant::now(),
        transport: Default::default(),
        message: AttributedPacket::new(Packet::Rtcp(packets)),
    };

    let mut viewer = Registry::new()
        .with(SLOT, KeyframeRequestForwarder::default())
        .build();
    if viewer.handle_read(tagged(packets.clone())).is_ok() {
        let delivered = viewer.poll_read().is_some();
        assert_eq!(
            delivered, keyframe,
            "a viewer's application sees RTCP iff it asks for a keyframe"
        );
    }
    let sink = Arc::new(CcSink::default());
    let mut publisher = Registry::new()
        .with(SLOT, feedback::forwarder(sink.clone()))
        .build();
    if publisher.handle_read(tagged(packets)).is_ok() {
        while publisher.poll_read().is_some() {}
        assert_eq!(
            sink.twcc_feedback
                .load(std::sync::atomic::Ordering::Relaxed),
            twcc
        );
    }
}

/// The relay's RTP rewriter (`sutantra_core::relay::Rewriter`) on a stream of upstream packets,
/// with reconnects: never panics, never changes a payload's length, and every packet it forwards
/// in a session continues after what it forwarded before (a packet that starts a keyframe after
/// a reconnect gets a sequence number one past the newest sent).
pub fn relay_rtp(data: &[u8]) {
    use sutantra_core::relay::Rewriter;
    let mut rw = Rewriter::new(0xfff0, 0xffff_f000, 0x7ff0);
    let mut now = Duration::ZERO;
    let mut newest: Option<u16> = None;
    let mut after_change = false;
    for p in parts(data) {
        let Some((head, payload)) = p.split_at_checked(8) else {
            continue;
        };
        let flag = head[0];
        if flag & 2 != 0 {
            rw.upstream_changed();
            after_change = true;
        }
        let seq = u16::from_be_bytes([head[1], head[2]]);
        let ts = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        now += Duration::from_millis(u64::from(head[7]));
        let ssrc = if flag & 4 != 0 {
            0xdead_beef
        } else {
            0x1234_5678
        };
        if let Ok(out) = rw.rewrite(now, ssrc, seq, ts, flag & 1 != 0, payload) {
            assert_eq!(
                out.payload.len(),
                payload.len(),
                "the rewriter changed a length"
            );
            if after_change && let Some(n) = newest {
                assert_eq!(
                    out.seq,
                    n.wrapping_add(1),
                    "a new session does not continue after the newest packet sent"
                );
                assert!(
                    out.keyframe_start,
                    "a new session started without a keyframe"
                );
            }
            after_change = false;
            let is_newer = newest.is_none_or(|n| out.seq.wrapping_sub(n) < 0x8000);
            if is_newer {
                newest = Some(out.seq);
            }
        }
    }
    let s = rw.stats();
    assert!(s.forwarded <= data.len() as u64);
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use sutantra::validator::store::{STORE_FILE, Store, StoreError};

    /// The inputs that made redb 4.6 panic (`artifacts/store_open/`): opening, reading and
    /// closing each damaged store, as the CLI (read-only) and the node (for writing) do, redb
    /// panics somewhere, and the store catches every such panic (counted); what it reports is
    /// an error that names the file and says what to do.
    #[test]
    fn damaged_stores_that_make_redb_panic_are_errors_that_say_what_to_do() {
        use sutantra::validator::store::contained_panics;
        let_store_contain_redb_panics();
        let dir_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/store_open");
        let mut inputs: Vec<_> = std::fs::read_dir(&dir_in)
            .unwrap_or_else(|e| panic!("{}: {e}", dir_in.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 7, "the redb crash inputs are missing");
        let mut reported = 0;
        for input in inputs {
            let _guard = support::lock();
            let data = std::fs::read(&input).unwrap_or_else(|e| panic!("{e}"));
            let dir = support::scratch("store-damaged");
            std::fs::write(dir.join(STORE_FILE), damaged_store(&data))
                .unwrap_or_else(|e| panic!("{e}"));
            let before = contained_panics();
            let mut errors = Vec::new();
            let mut keep = |r: Result<(), StoreError>| {
                if let Err(e) = r {
                    errors.push(e);
                }
            };
            // Every read the CLI and the node make, each on its own (an error in one does not
            // hide the others).
            let read_all = |s: &Store, keep: &mut dyn FnMut(Result<(), StoreError>)| {
                keep(s.meta().map(drop));
                keep(s.latest_trusted().map(drop));
                keep(s.trusted_heights().map(drop));
                keep(s.trusted_at(10).map(drop));
                keep(s.outbox(0, u64::MAX).map(drop));
                keep(s.outbox_entry(1).map(drop));
                keep(s.oldest_pending().map(drop));
                keep(s.pending_count().map(drop));
                keep(s.outbox_len().map(drop));
            };
            match Store::open_read_only(&dir) {
                Ok(s) => read_all(&s.unwrap_or_else(|| panic!("the file exists")), &mut keep),
                Err(e) => keep(Err(e)),
            }
            match Store::open(&dir, Duration::ZERO) {
                Ok(s) => read_all(&s, &mut keep),
                Err(e) => keep(Err(e)),
            }
            // A crash input makes redb panic (caught); an out-of-memory input (`oom-*`) is a
            // read past the end of the file, refused by the patched redb (vendor/redb).
            let oom = input
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("oom-"));
            if oom {
                assert!(
                    errors
                        .iter()
                        .any(|e| e.to_string().contains("beyond the end of the file")),
                    "{}: the read past the end was not refused: {errors:?}",
                    input.display()
                );
            } else {
                assert!(
                    contained_panics() > before,
                    "{}: redb no longer panics on this input (good news: move it to the corpus)",
                    input.display()
                );
            }
            for e in &errors {
                if matches!(e, StoreError::Corrupt { .. }) {
                    reported += 1;
                    let m = e.to_string();
                    assert!(m.contains(STORE_FILE), "{m}");
                    assert!(m.contains("back it up and move it away"), "{m}");
                }
            }
            support::remove(&dir);
        }
        assert!(
            reported >= 4,
            "the damage was reported only {reported} times"
        );
    }
}
