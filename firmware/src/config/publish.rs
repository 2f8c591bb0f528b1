//! `[[publish]]` targets: where the node publishes its stream over WHIP (RFC 9725).
//!
//! A target is a WHIP endpoint URL, an optional bearer token and an `enabled` flag; several may be
//! configured at once (`sutantra run --publish URL` adds more). Validation lives here so that
//! `config.rs` only gains a field and a call; errors are `(dotted key, reason)` like the rest of
//! the configuration, e.g. `publish[1].url`.

use serde::Deserialize;

/// One `[[publish]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishTarget {
    /// The WHIP endpoint, `http://host:port/path`.
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer <token>`, if the endpoint wants one.
    #[serde(default)]
    pub token: Option<String>,
    /// Publish to this target (default true); `false` keeps it in the file without using it.
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// For an https endpoint with a private CA: a PEM file of the CA certificates to trust
    /// (instead of the built-in public roots).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

fn enabled_default() -> bool {
    true
}

impl PublishTarget {
    /// An enabled target without a token (`--publish URL`).
    pub fn from_url(url: &str) -> Self {
        Self {
            url: url.to_string(),
            token: None,
            enabled: true,
            ca_file: None,
        }
    }
}

/// Reads the CA certificates of a PEM file (at least one).
pub fn load_ca_file(
    path: &std::path::Path,
) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("{}: not PEM: {e}", path.display())),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (a PEM file with -----BEGIN CERTIFICATE----- blocks)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Most targets at once (each is one peer connection and one fan-out queue).
pub const MAX_TARGETS: usize = 16;

/// Checks every target; returns `(dotted key, reason)` for the first bad one.
pub fn validate(targets: &[PublishTarget]) -> Result<(), (String, String)> {
    if targets.len() > MAX_TARGETS {
        return Err((
            "publish".into(),
            format!(
                "{} targets: use at most {MAX_TARGETS} (each one is a peer connection)",
                targets.len()
            ),
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        if let Err(reason) = check_whip_url(&t.url) {
            return Err((format!("publish[{i}].url"), reason));
        }
        if let Some(path) = &t.ca_file {
            if !t.url.starts_with("https://") {
                return Err((
                    format!("publish[{i}].ca_file"),
                    "a CA file is only used for an https:// URL".into(),
                ));
            }
            load_ca_file(path).map_err(|reason| (format!("publish[{i}].ca_file"), reason))?;
        }
        if t.token.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err((
                format!("publish[{i}].token"),
                "empty token: remove the key to publish without a token".into(),
            ));
        }
        if t.token.as_deref().is_some_and(|s| {
            s.chars()
                .any(|c| c.is_control() || c == ' ' || !c.is_ascii())
        }) {
            return Err((
                format!("publish[{i}].token"),
                "the token must be printable ASCII without spaces (it goes into an HTTP header)"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Checks a WHIP endpoint URL: `http(s)://host[:port][/path]`, no fragment, no spaces.
pub fn check_whip_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(format!(
            "`{url}`: use the endpoint's WHIP URL, https://host[:port]/path (or http:// on a \
             local network)"
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.contains(['#', ' ', '\t']) {
        return Err(format!(
            "`{url}`: use http://host:port/path (no user info, no fragment, no spaces)"
        ));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("`{url}`: the port `{port}` is not 1 to 65535"));
    }
    Ok(())
}

/// The 1-based line of `publish[i].key` in a TOML text (the `[[publish]]` header when the key is
/// not written), or 0 when there is no such table.
pub fn find_line(text: &str, index: usize, key: &str) -> usize {
    let mut seen = 0usize;
    let mut header = 0usize;
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            if inside {
                break;
            }
            if t.replace(' ', "") == "[[publish]]" {
                if seen == index {
                    inside = true;
                    header = n.saturating_add(1);
                }
                seen = seen.saturating_add(1);
            }
            continue;
        }
        if inside && t.split('=').next().map(str::trim) == Some(key) && t.contains('=') {
            return n.saturating_add(1);
        }
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_whip_url("http://127.0.0.1:8889/whip").is_ok());
        assert!(check_whip_url("http://relay.local/live/cam1/whip?x=1").is_ok());
        assert!(check_whip_url("http://[::1]:80/whip").is_ok());
        assert!(check_whip_url("https://relay.example/whip").is_ok());
        for bad in [
            "ftp://x/whip",
            "http:///whip",
            "http://a b/whip",
            "http://h:0/whip",
            "http://h:99999/whip",
            "http://u:p@h/whip",
            "https://",
            "relay:8080",
        ] {
            assert!(check_whip_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_of_the_nth_table() {
        let text = "[source]\nfps = 30\n\n[[publish]]\nurl = \"a\"\n\n[[publish]]\n\
                    enabled = false\nurl = \"b\"\n[http]\nurl = 1\n";
        assert_eq!(find_line(text, 0, "url"), 5);
        assert_eq!(find_line(text, 1, "url"), 9);
        assert_eq!(find_line(text, 1, "token"), 7);
        assert_eq!(find_line(text, 2, "url"), 0);
    }

    #[test]
    fn ca_files_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = PublishTarget::from_url("https://h/whip");
        t.ca_file = Some(dir.path().join("missing.pem"));
        let (key, reason) = validate(std::slice::from_ref(&t)).expect_err("missing");
        assert_eq!(key, "publish[0].ca_file");
        assert!(reason.contains("cannot read"), "{reason}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        t.ca_file = Some(empty);
        let (_, reason) = validate(std::slice::from_ref(&t)).expect_err("empty");
        assert!(reason.contains("no certificate"), "{reason}");
        t.url = "http://h/whip".into();
        let (_, reason) = validate(std::slice::from_ref(&t)).expect_err("http");
        assert!(reason.contains("https"), "{reason}");
    }

    #[test]
    fn tokens_are_checked() {
        let mut t = PublishTarget::from_url("http://h/whip");
        assert!(validate(std::slice::from_ref(&t)).is_ok());
        t.token = Some(" ".into());
        assert_eq!(
            validate(std::slice::from_ref(&t)).map_err(|e| e.0),
            Err("publish[0].token".to_string())
        );
        t.token = Some("a b".into());
        assert!(validate(&[t]).is_err());
    }
}
