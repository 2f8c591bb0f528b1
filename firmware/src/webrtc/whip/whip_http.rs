//! The HTTP half of WHIP (RFC 9725): POST the offer, follow redirects, read the answer, the
//! resource URL and the ICE servers the endpoint offers; DELETE the resource.
//!
//! Blocking `ureq` calls (the caller runs them in `spawn_blocking`), each with a deadline and a
//! bounded body, so a hanging or hostile endpoint can neither stall the node nor make it grow.
//! Redirects (307/308) are followed here, a bounded number of times, re-sending the same offer
//! to the new URL, because the resource URL in `Location` is resolved against the URL that
//! finally answered. Nothing here panics on what the network sends.

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
    /// The session's resource URL (absolute), for DELETE.
    pub resource: String,
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
        end -= 1;
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

/// POSTs `offer` to `url` (with `Authorization: Bearer token` if given), following up to
/// `MAX_REDIRECTS` 307/308 redirects; returns the created session.
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
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent
            .post(&url)
            .header("Content-Type", "application/sdp")
            .header("Accept", "application/sdp");
        if let Some(t) = token {
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
            resource,
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

/// DELETEs a session resource; returns the status (errors as text for the log).
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
        let last = i + 1 == segs.len();
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
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
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

    #[test]
    fn error_text_is_short_and_printable() {
        let long = "x".repeat(1000);
        assert!(short(&long).chars().count() <= ERROR_TEXT + 1);
        assert_eq!(short("bad\r\ntoken\n"), "bad  token");
    }
}
