//! The HTTP half of WHIP (RFC 9725): POST the offer, follow redirects, read the answer, the
//! resource URL and the ICE servers the endpoint offers; DELETE the resource.
//!
//! Blocking `ureq` calls (the caller runs them in `spawn_blocking`), each with a deadline and a
//! bounded body, so a hanging or hostile endpoint can neither stall the node nor make it grow.
//! Redirects (307/308) are followed here, not by the agent, a bounded number of times,
//! re-sending the same offer to the new URL, because the resource URL in `Location` is resolved
//! against the URL that finally answered. Nothing here panics on what the network sends.
//!
//! Where the token goes: `Authorization: Bearer` is sent only to the configured URL's
//! [`Origin`] (scheme, host and port). A redirect to another origin is followed without it, and
//! a redirect from https to http is refused outright (the offer, and with it the session, would
//! travel in clear text). The session's resource (DELETE) must be on the origin that created the
//! session: a `Location` on another origin is not used (logged), so a hostile endpoint cannot
//! point the node's DELETE, and its token, at a third party.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/whip_http.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::outbound::Origin;
use std::path::Path;
use std::time::Duration;

/// Largest answer body we read (an SDP answer is a few KiB).
const MAX_BODY: u64 = 64 * 1024;
/// Most redirects followed for one POST.
const MAX_REDIRECTS: usize = 5;
/// Longest error body kept for the log.
const ERROR_TEXT: usize = 200;

/// An ICE server offered by the endpoint in a `Link: <url>; rel="ice-server"` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkIceServer {
    /// `stun:` or `turn:` URL.
    pub url: String,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN credential (empty for STUN).
    pub credential: String,
}

/// A 201 answer to the offer.
#[derive(Debug, Clone)]
pub struct Created {
    /// The session's resource URL (absolute, on the origin of `endpoint`), for DELETE; `None`
    /// when the endpoint's `Location` named another origin (then nothing is DELETEd).
    pub resource: Option<String>,
    /// Whether the token may go with the DELETE: `endpoint` is on the configured URL's origin.
    pub send_token: bool,
    /// The SDP answer.
    pub answer: String,
    /// ICE servers from `Link` headers.
    pub ice_servers: Vec<LinkIceServer>,
    /// The URL that answered (after redirects).
    pub endpoint: String,
}

/// Why a POST did not create a session.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WhipError {
    /// The endpoint answered with an error status.
    #[error("{url} answered {status}: {text}")]
    Status {
        /// The URL that answered.
        url: String,
        /// HTTP status.
        status: u16,
        /// The start of the body (plain text), for the log.
        text: String,
        /// `Retry-After` in seconds, if given.
        retry_after: Option<u64>,
    },
    /// No HTTP answer (connection refused, timeout, DNS).
    #[error("{url}: {reason}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that breaks the protocol (201 without Location, redirect loop, bad SDP type).
    #[error("{url}: {reason}")]
    Protocol {
        /// The URL that answered.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

impl WhipError {
    /// A short class for "log once per streak": the status, or the kind of failure.
    pub fn class(&self) -> String {
        match self {
            WhipError::Status { status, .. } => format!("status {status}"),
            WhipError::Unreachable { .. } => "unreachable".into(),
            WhipError::Protocol { reason, .. } => format!("protocol: {reason}"),
        }
    }

    /// 401/403: the token is wrong or missing (a configuration error, not an outage).
    pub fn is_auth(&self) -> bool {
        matches!(self, WhipError::Status { status, .. } if *status == 401 || *status == 403)
    }
}

fn header<'a>(resp: &'a ureq::http::Response<ureq::Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn short(text: &str) -> String {
    let t = text.trim();
    let mut end = t.len().min(ERROR_TEXT);
    while !t.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let mut s: String = t[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if end < t.len() {
        s.push('…');
    }
    s
}

/// How long one POST (with its redirects) may take; for WHIP publishers and a relay's WHEP
/// subscription alike.
pub const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a DELETE may take (shutdown waits for it).
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// POSTs `offer` to `url` (with `Authorization: Bearer token` if given, to `url`'s origin
/// only), following up to `MAX_REDIRECTS` 307/308 redirects; returns the created session.
pub fn post_offer(
    url: &str,
    token: Option<&str>,
    ca_file: Option<&Path>,
    offer: &str,
    timeout: Duration,
) -> Result<Created, WhipError> {
    let roots = crate::outbound::roots(ca_file).map_err(|reason| WhipError::Protocol {
        url: url.to_string(),
        reason: format!("ca_file: {reason}"),
    })?;
    let agent = crate::outbound::agent(timeout, roots);
    let home = Origin::of(url);
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let send_token = home.is_some() && Origin::of(&url) == home;
        let mut req = agent
            .post(&url)
            .header("Content-Type", "application/sdp")
            .header("Accept", "application/sdp");
        if let Some(t) = token.filter(|_| send_token) {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut resp = req
            .send(offer.as_bytes())
            .map_err(|e| WhipError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if status == 307 || status == 308 {
            let Some(next) = header(&resp, "location").and_then(|l| resolve(&url, l)) else {
                return Err(WhipError::Protocol {
                    url,
                    reason: format!("{status} redirect without a usable Location"),
                });
            };
            check_redirect(&url, &next, home.as_ref(), token.is_some())?;
            tracing::info!(from = %url, to = %next, status, "WHIP endpoint redirects");
            url = next;
            continue;
        }
        let location = header(&resp, "location").map(str::to_string);
        let retry_after = header(&resp, "retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let ice_servers = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_link_ice_servers)
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| WhipError::Unreachable {
                url: url.clone(),
                reason: format!("reading the answer: {e}"),
            })?;
        if status != 201 {
            return Err(WhipError::Status {
                url,
                status,
                text: short(&body),
                retry_after,
            });
        }
        let Some(resource) = location.as_deref().and_then(|l| resolve(&url, l)) else {
            return Err(WhipError::Protocol {
                url,
                reason: "201 Created without a usable Location header (RFC 9725 requires one)"
                    .into(),
            });
        };
        if !body.trim_start().starts_with("v=0") {
            return Err(WhipError::Protocol {
                url,
                reason: format!("the 201 body is not an SDP answer: {}", short(&body)),
            });
        }
        return Ok(Created {
            resource: same_origin_resource(&url, resource),
            send_token,
            answer: body,
            ice_servers,
            endpoint: url,
        });
    }
    Err(WhipError::Protocol {
        url,
        reason: format!("more than {MAX_REDIRECTS} redirects"),
    })
}

/// Whether a redirect from `from` to `to` may be followed: never from https to http (a clear
/// error naming both URLs). Leaving the configured origin `home` is allowed, without the token
/// (logged once per redirect when a token is configured).
fn check_redirect(
    from: &str,
    to: &str,
    home: Option<&Origin>,
    has_token: bool,
) -> Result<(), WhipError> {
    let (a, b) = (Origin::of(from), Origin::of(to));
    if a.as_ref().is_some_and(Origin::is_https) && !b.as_ref().is_some_and(Origin::is_https) {
        return Err(WhipError::Protocol {
            url: from.to_string(),
            reason: format!(
                "refusing the redirect from {from} to {to}: https to http would send the offer \
                 in clear text; configure the http URL yourself if that is really meant"
            ),
        });
    }
    if has_token && b.as_ref() != home {
        tracing::warn!(
            from = %from,
            to = %to,
            "the WHIP endpoint redirects to another origin; the bearer token is not sent there"
        );
    }
    Ok(())
}

/// The resource URL if it is on the origin of the `endpoint` that created the session; `None`
/// (logged) if it points elsewhere: the node sends its DELETE only where the session lives.
fn same_origin_resource(endpoint: &str, resource: String) -> Option<String> {
    let (ours, theirs) = (Origin::of(endpoint), Origin::of(&resource));
    if ours.is_some() && ours == theirs {
        return Some(resource);
    }
    tracing::warn!(
        endpoint = %endpoint,
        location = %resource,
        "the WHIP session's Location is on another origin than the endpoint that created it; \
         it is not used, and the session will not be DELETEd (the endpoint ends it on its own)"
    );
    None
}

/// DELETEs a session resource; returns the status (errors as text for the log). `token` is
/// sent as given: the caller passes it only for a resource on the configured origin.
pub fn delete(
    resource: &str,
    token: Option<&str>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<u16, String> {
    let agent = crate::outbound::agent(timeout, crate::outbound::roots(ca_file)?);
    let mut req = agent.delete(resource);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    req.call()
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Resolves `location` (absolute, scheme-relative, absolute-path or relative) against `base`.
/// `None` when it cannot be used (another scheme, empty).
pub fn resolve(base: &str, location: &str) -> Option<String> {
    let loc = location.trim();
    if loc.is_empty() || loc.contains(char::is_whitespace) {
        return None;
    }
    let lower = loc.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Some(loc.to_string());
    }
    if lower.contains("://") {
        return None;
    }
    let (scheme, rest) = base.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(net) = loc.strip_prefix("//") {
        return Some(format!("{scheme}://{net}"));
    }
    if loc.starts_with('/') {
        return Some(format!("{scheme}://{authority}{}", dot_segments(loc)));
    }
    let path = rest[authority_end..].split('?').next().unwrap_or("");
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    if let Some(query) = loc.strip_prefix('?') {
        return Some(format!("{scheme}://{authority}{path}?{query}"));
    }
    Some(format!(
        "{scheme}://{authority}{}",
        dot_segments(&format!("{dir}{loc}"))
    ))
}

/// Removes `.` and `..` segments from an absolute path (RFC 3986 section 5.2.4); keeps a query.
fn dot_segments(path: &str) -> String {
    let (p, q) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = p.split('/').skip(1).collect();
    for (i, s) in segs.iter().enumerate() {
        let last = i.saturating_add(1) == segs.len();
        match *s {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    let mut r = format!("/{}", out.join("/"));
    if let Some(q) = q {
        r.push('?');
        r.push_str(q);
    }
    r
}

/// The ICE servers in one `Link` header value (RFC 9725 section 4.6; RFC 8288 syntax):
/// `<stun:stun.example.net>; rel="ice-server", <turn:t.example.net?transport=udp>;
/// rel="ice-server"; username="u"; credential="p"; credential-type="password"`.
pub fn parse_link_ice_servers(value: &str) -> Vec<LinkIceServer> {
    let mut out = Vec::new();
    for link in split_outside(value, ',') {
        let link = link.trim();
        let Some(rest) = link.strip_prefix('<') else {
            continue;
        };
        let Some((url, params)) = rest.split_once('>') else {
            continue;
        };
        let mut rel_ok = false;
        let (mut username, mut credential) = (String::new(), String::new());
        for param in split_outside(params, ';') {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "rel" => {
                    rel_ok = v
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("ice-server"))
                }
                "username" => username = v.to_string(),
                "credential" => credential = v.to_string(),
                _ => {}
            }
        }
        let url = url.trim();
        let lower = url.to_ascii_lowercase();
        let scheme_ok = ["stun:", "stuns:", "turn:", "turns:"]
            .iter()
            .any(|s| lower.starts_with(s));
        if rel_ok && scheme_ok && url.len() <= 512 && out.len() < 8 {
            out.push(LinkIceServer {
                url: url.to_string(),
                username,
                credential,
            });
        }
    }
    out
}

/// Splits on `sep` outside `<...>` and `"..."`.
fn split_outside(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut angle, mut quote, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            c if c == sep && !angle && !quote => {
                parts.push(&s[start..i]);
                start = i.saturating_add(c.len_utf8());
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_endpoint() {
        let base = "http://127.0.0.1:9000/live/whip?x=1";
        assert_eq!(
            resolve(base, "/whip/abc").as_deref(),
            Some("http://127.0.0.1:9000/whip/abc")
        );
        assert_eq!(
            resolve(base, "abc").as_deref(),
            Some("http://127.0.0.1:9000/live/abc")
        );
        assert_eq!(
            resolve(base, "../r/1").as_deref(),
            Some("http://127.0.0.1:9000/r/1")
        );
        assert_eq!(
            resolve(base, "http://other:1/res").as_deref(),
            Some("http://other:1/res")
        );
        assert_eq!(
            resolve(base, "//other:2/res").as_deref(),
            Some("http://other:2/res")
        );
        assert_eq!(resolve("http://h", "r").as_deref(), Some("http://h/r"));
        assert_eq!(resolve(base, "ftp://x/y"), None);
        assert_eq!(resolve(base, ""), None);
    }

    #[test]
    fn link_headers_give_ice_servers() {
        let v = "<stun:stun.example.net>; rel=\"ice-server\", \
                 <turn:turn.example.net?transport=udp>; rel=\"ice-server\"; \
                 username=\"user\"; credential=\"p,ss\"; credential-type=\"password\", \
                 <https://example.net/doc>; rel=\"help\"";
        let s = parse_link_ice_servers(v);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].url, "stun:stun.example.net");
        assert_eq!(s[1].url, "turn:turn.example.net?transport=udp");
        assert_eq!(
            (s[1].username.as_str(), s[1].credential.as_str()),
            ("user", "p,ss")
        );
        assert!(parse_link_ice_servers("garbage, <; rel=").is_empty());
        assert!(parse_link_ice_servers("<http://x>; rel=\"ice-server\"").is_empty());
    }

    /// What a test server saw of one request.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        authorization: Option<String>,
    }

    /// A one-thread HTTP server on 127.0.0.1:0 that records each request and answers with
    /// `respond(index, path)`: `(status, headers, body)`. Returns its base URL and the log.
    fn recording(
        respond: impl Fn(usize, &str) -> (u16, Vec<(String, String)>, String) + Send + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for (i, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("/").to_string();
                let (mut authorization, mut length) = (None, 0usize);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        match k.trim().to_ascii_lowercase().as_str() {
                            "authorization" => authorization = Some(v.trim().to_string()),
                            "content-length" => length = v.trim().parse().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().expect("log").push(Seen {
                    method,
                    path: path.clone(),
                    authorization,
                });
                let (status, headers, body) = respond(i, &path);
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            }
        });
        (base, log)
    }

    fn location(l: &str) -> Vec<(String, String)> {
        vec![("Location".to_string(), l.to_string())]
    }

    const ANSWER: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn post(url: &str) -> Result<Created, WhipError> {
        post_offer(url, Some("secret"), None, "v=0\r\n", Duration::from_secs(5))
    }

    #[test]
    fn the_token_does_not_follow_a_redirect_to_another_origin() {
        // B: the other origin (another port); it creates the session, with a Location on C.
        let (c, c_log) = recording(|_, _| (200, vec![], String::new()));
        let c_res = format!("{c}/res/1");
        let (b, b_log) = recording(move |i, _| match i {
            0 => (201, location(&c_res), ANSWER.into()),
            _ => (201, location("/whip/2"), ANSWER.into()),
        });
        let b_whip = format!("{b}/whip");
        let (a, a_log) = recording(move |_, _| (307, location(&b_whip), String::new()));
        let a_whip = format!("{a}/whip");

        // 1. A redirects to B: A gets the token, B does not; B's Location on C is not used.
        let created = post(&a_whip).expect("created on B");
        assert_eq!(created.endpoint, format!("{b}/whip"));
        assert_eq!(
            created.resource, None,
            "a Location on a third origin is used"
        );
        assert!(!created.send_token);
        // 2. Again: this time B's Location is its own: the resource is on B, without the token.
        let created = post(&a_whip).expect("created on B");
        assert_eq!(created.resource, Some(format!("{b}/whip/2")));
        assert!(!created.send_token);
        let a_seen = a_log.lock().expect("log").clone();
        let b_seen = b_log.lock().expect("log").clone();
        assert_eq!(a_seen.len(), 2, "{a_seen:?}");
        assert!(
            a_seen
                .iter()
                .all(|s| s.authorization.as_deref() == Some("Bearer secret")),
            "the configured origin gets the token: {a_seen:?}"
        );
        assert_eq!(b_seen.len(), 2, "{b_seen:?}");
        assert!(
            b_seen.iter().all(|s| s.authorization.is_none()),
            "another origin got the token: {b_seen:?}"
        );
        assert!(c_log.lock().expect("log").is_empty());
    }

    #[test]
    fn the_token_follows_a_redirect_within_the_origin() {
        let (a, a_log) = recording(|i, _| match i {
            0 => (308, location("/v2/whip"), String::new()),
            _ => (201, location("res/9"), ANSWER.into()),
        });
        let created = post(&format!("{a}/whip")).expect("created");
        assert_eq!(created.resource, Some(format!("{a}/v2/res/9")));
        assert!(created.send_token);
        let seen = a_log.lock().expect("log").clone();
        assert_eq!(
            seen.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
            ["/whip", "/v2/whip"]
        );
        assert!(
            seen.iter()
                .all(|s| s.method == "POST" && s.authorization.as_deref() == Some("Bearer secret")),
            "{seen:?}"
        );
    }

    #[test]
    fn https_to_http_redirects_are_refused_naming_both_urls() {
        let home = Origin::of("https://relay.example/whip");
        let e = check_redirect(
            "https://relay.example/whip",
            "http://relay.example/whip",
            home.as_ref(),
            true,
        )
        .expect_err("downgrade");
        let text = e.to_string();
        assert!(
            text.contains("https://relay.example/whip")
                && text.contains("http://relay.example/whip"),
            "{text}"
        );
        assert!(text.contains("https to http"), "{text}");
        // Up, or sideways on https, is fine (the token stays home either way).
        assert!(
            check_redirect(
                "http://a.example/w",
                "https://a.example/w",
                home.as_ref(),
                true
            )
            .is_ok()
        );
        assert!(
            check_redirect(
                "https://a.example/w",
                "https://b.example/w",
                home.as_ref(),
                true
            )
            .is_ok()
        );
        assert_eq!(
            same_origin_resource("https://a.example/w", "https://b.example/r/1".into()),
            None
        );
        assert_eq!(
            same_origin_resource("https://a.example/w", "https://a.example:443/r/1".into())
                .as_deref(),
            Some("https://a.example:443/r/1")
        );
    }

    #[test]
    fn error_text_is_short_and_printable() {
        let long = "x".repeat(1000);
        assert!(short(&long).chars().count() <= ERROR_TEXT + 1);
        assert_eq!(short("bad\r\ntoken\n"), "bad  token");
    }
}
