//! A small blocking CometBFT JSON-RPC client (URI over HTTP GET) for the chain thread.
//!
//! It owns the wire side of following a chain: `/status`, `/commit?height=H`,
//! `/validators?height=H&page=P&per_page=100` (paged until `total`, bounded by
//! `chain.max_validators`) and `/broadcast_tx_sync?tx=0x<hex>`. It runs on a dedicated OS thread
//! (`ureq`, blocking), never on the tokio runtime that serves viewers.
//!
//! Everything an RPC server sends is hostile input: the body is read with a hard limit
//! (`chain.max_response_bytes`; a larger `Content-Length` is refused before a byte is read, and a
//! chunked body is cut at the limit), parsed without panicking, and a malformed, oversized or
//! inconsistent response is an [`RpcError`] naming the URL and the reason. Nothing here decides
//! trust: the light-client verifier in `sutantra_chain::light` does that with what this returns.

use serde_json::Value;
use std::time::Duration;

/// Validators asked for per page (CometBFT's maximum).
pub const PER_PAGE: usize = 100;

/// Why an RPC call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The server could not be reached or the connection broke.
    #[error("{url}: cannot reach the RPC server: {reason}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The body is larger than allowed.
    #[error(
        "{url}: the response is larger than {limit} bytes (chain.max_response_bytes); refused \
         before parsing"
    )]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// A non-JSON answer with an HTTP error status.
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not what CometBFT sends.
    #[error("{url}: malformed response: {reason}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON-RPC error object.
    #[error("{url}: RPC error {code}: {message}")]
    Rpc {
        /// The URL asked.
        url: String,
        /// JSON-RPC error code.
        code: i64,
        /// Message and data.
        message: String,
    },
}

/// What `/status` says that the light client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `node_info.network`: the chain id the server is on.
    pub network: String,
    /// `sync_info.latest_block_height`.
    pub latest_height: u64,
    /// `sync_info.catching_up`.
    pub catching_up: bool,
}

/// The answer of `/broadcast_tx_sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// ABCI `CheckTx` code: 0 accepted into the mempool.
    pub code: u32,
    /// The app's log line.
    pub log: String,
    /// The code space of a non-zero code.
    pub codespace: String,
    /// The transaction hash (upper-case hex, as CometBFT prints it).
    pub hash: String,
}

/// One RPC server.
#[derive(Debug, Clone)]
pub struct RpcClient {
    agent: ureq::Agent,
    base: String,
    max_bytes: u64,
}

impl RpcClient {
    /// A client for `base` (`http://host:26657`) with a body limit and a per-call timeout.
    pub fn new(base: &str, max_bytes: u64, timeout: Duration) -> Self {
        let agent = crate::outbound::agent(timeout, ureq::tls::RootCerts::WebPki);
        Self {
            agent,
            base: base.trim_end_matches('/').to_string(),
            max_bytes,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path` (with query) and returns the raw body, bounded.
    pub fn get_raw(&self, path: &str) -> Result<(u16, Vec<u8>, String), RpcError> {
        let full = format!("{}{path}", self.base);
        // Errors name the URL; a transaction in the query is shortened to its size.
        let url = match path.split_once('?') {
            Some((p, q)) if q.len() > 80 => {
                format!("{}{p}?({} bytes of query)", self.base, q.len())
            }
            _ => full.clone(),
        };
        let unreachable = |e: ureq::Error| RpcError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let mut resp = self.agent.get(&full).call().map_err(unreachable)?;
        let status = resp.status().as_u16();
        let declared = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_bytes) {
            return Err(RpcError::TooLarge {
                url,
                limit: self.max_bytes,
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => RpcError::TooLarge {
                    url: url.clone(),
                    limit: self.max_bytes,
                },
                other => RpcError::Unreachable {
                    url: url.clone(),
                    reason: other.to_string(),
                },
            })?;
        Ok((status, body, url))
    }

    /// GETs `path` and returns the JSON-RPC `result` object.
    pub fn get_result(&self, path: &str) -> Result<Value, RpcError> {
        let (status, body, url) = self.get_raw(path)?;
        parse_result(status, &body, &url)
    }

    /// `/status`.
    pub fn status(&self) -> Result<Status, RpcError> {
        let path = "/status";
        let r = self.get_result(path)?;
        let url = format!("{}{path}", self.base);
        let malformed = |reason: &str| RpcError::Malformed {
            url: url.clone(),
            reason: reason.into(),
        };
        let network = r
            .pointer("/node_info/network")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no node_info.network"))?
            .to_string();
        let latest_height = r
            .pointer("/sync_info/latest_block_height")
            .and_then(int_of)
            .ok_or_else(|| malformed("no sync_info.latest_block_height"))?;
        let catching_up = r
            .pointer("/sync_info/catching_up")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Status {
            network,
            latest_height,
            catching_up,
        })
    }

    /// `/commit?height=H`: the `result` object (`signed_header`, `canonical`), checked to be
    /// for height `height`.
    pub fn commit(&self, height: u64) -> Result<Value, RpcError> {
        let path = format!("/commit?height={height}");
        let r = self.get_result(&path)?;
        let url = format!("{}{path}", self.base);
        let got = r
            .pointer("/signed_header/header/height")
            .and_then(int_of)
            .ok_or_else(|| RpcError::Malformed {
                url: url.clone(),
                reason: "no signed_header.header.height".into(),
            })?;
        if got != height {
            return Err(RpcError::Malformed {
                url,
                reason: format!("asked for height {height}, got a header at height {got}"),
            });
        }
        Ok(r)
    }

    /// `/validators?height=H`, every page: a `result` object holding all validators
    /// (`block_height`, `validators`, `count`, `total`). Refuses more than `max_validators`,
    /// pages that do not add up, and a set for another height.
    pub fn validators(&self, height: u64, max_validators: usize) -> Result<Value, RpcError> {
        let mut all: Vec<Value> = Vec::new();
        let mut total: Option<usize> = None;
        let max_pages = max_validators.div_ceil(PER_PAGE).max(1);
        for page in 1..=max_pages {
            let path = format!("/validators?height={height}&page={page}&per_page={PER_PAGE}");
            let url = format!("{}{path}", self.base);
            let malformed = |reason: String| RpcError::Malformed {
                url: url.clone(),
                reason,
            };
            let r = self.get_result(&path)?;
            let got_height = r.get("block_height").and_then(int_of);
            if got_height != Some(height) {
                return Err(malformed(format!(
                    "asked for the validators at height {height}, got block_height {got_height:?}"
                )));
            }
            let page_total = r
                .get("total")
                .and_then(int_of)
                .and_then(|t| usize::try_from(t).ok())
                .ok_or_else(|| malformed("no total".into()))?;
            if page_total > max_validators {
                return Err(malformed(format!(
                    "{page_total} validators, more than chain.max_validators ({max_validators})"
                )));
            }
            if page_total == 0 {
                return Err(malformed("an empty validator set".into()));
            }
            if total.is_some_and(|t| t != page_total) {
                return Err(malformed(format!(
                    "total changed between pages ({total:?} then {page_total})"
                )));
            }
            total = Some(page_total);
            let list = r
                .get("validators")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed("no validators array".into()))?;
            if list.is_empty() || list.len() > PER_PAGE || all.len() + list.len() > page_total {
                return Err(malformed(format!(
                    "page {page} holds {} validators; with {} before it that does not add up to \
                     total {page_total}",
                    list.len(),
                    all.len()
                )));
            }
            all.extend(list.iter().cloned());
            if all.len() == page_total {
                let n = all.len().to_string();
                return Ok(serde_json::json!({
                    "block_height": height.to_string(),
                    "validators": all,
                    "count": n,
                    "total": n,
                }));
            }
        }
        Err(RpcError::Malformed {
            url: format!("{}/validators?height={height}", self.base),
            reason: format!(
                "the pages did not reach total {total:?} within chain.max_validators \
                 ({max_validators})"
            ),
        })
    }

    /// `/broadcast_tx_sync?tx=0x<hex>`.
    pub fn broadcast_tx_sync(&self, tx: &[u8]) -> Result<Broadcast, RpcError> {
        let path = format!("/broadcast_tx_sync?tx=0x{}", hex::encode(tx));
        let r = self.get_result(&path)?;
        let url = format!("{}/broadcast_tx_sync", self.base);
        let code = r
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| RpcError::Malformed {
                url: url.clone(),
                reason: "no code".into(),
            })?;
        let text = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .take(1000)
                .collect::<String>()
        };
        Ok(Broadcast {
            code,
            log: text("log"),
            codespace: text("codespace"),
            hash: text("hash"),
        })
    }
}

/// A JSON number or a decimal string (CometBFT writes 64-bit integers as strings).
pub fn int_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Parses a JSON-RPC response body: the `result`, or the error it carries.
pub fn parse_result(status: u16, body: &[u8], url: &str) -> Result<Value, RpcError> {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if status == 200 => {
            return Err(RpcError::Malformed {
                url: url.into(),
                reason: format!("not JSON: {e}"),
            });
        }
        Err(_) => {
            return Err(RpcError::Status {
                url: url.into(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
    };
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = [err.get("message"), err.get("data")]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(": ");
        return Err(RpcError::Rpc {
            url: url.into(),
            code,
            message: message.chars().take(500).collect(),
        });
    }
    match v.get("result") {
        Some(r) if r.is_object() => Ok(r.clone()),
        _ if status != 200 => Err(RpcError::Status {
            url: url.into(),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        }),
        _ => Err(RpcError::Malformed {
            url: url.into(),
            reason: "no result object".into(),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::path::PathBuf;

    /// The CometBFT vectors kept in the repository (copied unchanged from upstream, never
    /// edited): `$SUTANTRA_VECTORS` (the `cometbft` folder itself, as the core's tests take it)
    /// or `tests/data/cometbft`.
    pub(crate) fn vectors() -> PathBuf {
        std::env::var_os("SUTANTRA_VECTORS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/cometbft")
            })
    }

    pub(crate) fn recorded(name: &str) -> Vec<u8> {
        let p = vectors().join("kvstore_v0_38/incoming").join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A one-thread HTTP server on 127.0.0.1:0 answering each request with `respond(path)`:
    /// `(status, headers, body)`. Serves `n` requests, then stops.
    pub(crate) fn serve(
        n: usize,
        respond: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + 'static,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                let (status, headers, body) = respond(&path);
                let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                let chunked = headers.iter().any(|(k, _)| k == "Transfer-Encoding");
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if !chunked && !headers.iter().any(|(k, _)| k == "Content-Length") {
                    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                if chunked {
                    for chunk in body.chunks(4096) {
                        let _ = write!(stream, "{:x}\r\n", chunk.len());
                        let _ = stream.write_all(chunk);
                        let _ = stream.write_all(b"\r\n");
                    }
                    let _ = stream.write_all(b"0\r\n\r\n");
                } else {
                    let _ = stream.write_all(&body);
                }
            }
        });
        format!("http://{addr}")
    }

    fn client(base: &str, max: u64) -> RpcClient {
        RpcClient::new(base, max, Duration::from_secs(5))
    }

    #[test]
    fn parses_recorded_status_commit_and_broadcast() {
        let status = recorded("status.json");
        let commit = recorded("commit_at_height_10.json");
        let tx = recorded("broadcast_tx_sync.json");
        let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = paths.clone();
        let base = serve(3, move |path| {
            seen.lock().expect("lock").push(path.to_string());
            let body = if path.starts_with("/status") {
                status.clone()
            } else if path.starts_with("/commit") {
                commit.clone()
            } else {
                tx.clone()
            };
            (200, vec![], body)
        });
        let c = client(&base, 1 << 20);
        let s = c.status().expect("status");
        assert_eq!(
            s,
            Status {
                network: "dockerchain".into(),
                latest_height: 232,
                catching_up: false
            }
        );
        let r = c.commit(10).expect("commit");
        assert_eq!(
            r.pointer("/signed_header/commit/block_id/hash")
                .and_then(Value::as_str),
            Some("00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE")
        );
        let b = c.broadcast_tx_sync(b"sync-key=value").expect("broadcast");
        assert_eq!(b.code, 0);
        assert_eq!(
            b.hash,
            "57018296EE0919C9D351F2FFEA82A8D28DE223724D79965FC8D00A7477ED48BC"
        );
        let paths = paths.lock().expect("lock");
        assert_eq!(paths[1], "/commit?height=10");
        assert_eq!(
            paths[2],
            format!("/broadcast_tx_sync?tx=0x{}", hex::encode(b"sync-key=value"))
        );
    }

    #[test]
    fn commit_for_another_height_is_refused() {
        let commit = recorded("commit_at_height_10.json");
        let base = serve(1, move |_| (200, vec![], commit.clone()));
        let e = client(&base, 1 << 20).commit(11).expect_err("lying server");
        assert!(
            matches!(&e, RpcError::Malformed { reason, .. } if reason.contains("height 11")),
            "{e}"
        );
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let status = recorded("status.json");
        let n = status.len() as u64;
        // Declared length over the limit.
        let body = status.clone();
        let base = serve(1, move |_| (200, vec![], body.clone()));
        let e = client(&base, n - 1).status().expect_err("too large");
        assert!(matches!(e, RpcError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("/status"), "{e}");
        // Chunked, no length: cut at the limit.
        let body = status.clone();
        let base = serve(1, move |_| {
            (
                200,
                vec![("Transfer-Encoding".into(), "chunked".into())],
                body.clone(),
            )
        });
        let e = client(&base, n - 1).status().expect_err("too large");
        assert!(matches!(e, RpcError::TooLarge { .. }), "{e}");
        // Exactly at the limit is fine.
        let body = status.clone();
        let base = serve(1, move |_| (200, vec![], body.clone()));
        client(&base, n).status().expect("at the limit");
    }

    #[test]
    fn malformed_and_error_responses_are_errors_not_panics() {
        let cases: Vec<(u16, &[u8])> = vec![
            (200, b"not json"),
            (200, b"{\"jsonrpc\":\"2.0\",\"id\":1}"),
            (200, b"{\"result\":{\"sync_info\":{}}}"),
            (200, b"{\"result\":{\"node_info\":{\"network\":\"x\"},\"sync_info\":{\"latest_block_height\":\"-3\"}}}"),
            (500, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32603,\"message\":\"Internal error\",\"data\":\"boom\"}}"),
            (502, b"<html>bad gateway</html>"),
            (200, b"[1,2,3]"),
        ];
        let n = cases.len();
        let owned: Vec<(u16, Vec<u8>)> = cases.iter().map(|(s, b)| (*s, b.to_vec())).collect();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let base = serve(n, move |_| {
            let i = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (owned[i].0, vec![], owned[i].1.clone())
        });
        let c = client(&base, 1 << 20);
        for i in 0..n {
            let e = c.status().expect_err("must fail");
            assert!(e.to_string().contains(&base), "{i}: {e}");
            if i == 4 {
                assert!(
                    matches!(&e, RpcError::Rpc { code: -32603, message, .. } if message.contains("boom"))
                );
            }
            if i == 5 {
                assert!(matches!(e, RpcError::Status { status: 502, .. }));
            }
        }
        // Nothing listening: unreachable, not a panic.
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            format!("http://{}", l.local_addr().expect("addr"))
        };
        assert!(matches!(
            client(&dead, 1 << 20).status(),
            Err(RpcError::Unreachable { .. })
        ));
    }

    #[test]
    fn validators_are_paged_to_total_and_bounded() {
        let v = |i: usize| {
            serde_json::json!({"address": format!("{i:040X}"),
                "pub_key": {"type": "tendermint/PubKeyEd25519", "value": "AAAA"},
                "voting_power": "10", "proposer_priority": "0"})
        };
        let page = move |height: u64, p: usize, total: usize| {
            let from = (p - 1) * PER_PAGE;
            let list: Vec<Value> = (from..total.min(from + PER_PAGE)).map(v).collect();
            serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {
                "block_height": height.to_string(), "validators": list,
                "count": list.len().to_string(), "total": total.to_string()}}))
            .expect("json")
        };
        let page_of = |path: &str| -> usize {
            path.split("page=")
                .nth(1)
                .and_then(|s| s.split('&').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(1)
        };
        let base = serve(3, move |path| (200, vec![], page(7, page_of(path), 250)));
        let r = client(&base, 1 << 20).validators(7, 10_000).expect("paged");
        assert_eq!(r["validators"].as_array().map(Vec::len), Some(250));
        assert_eq!(r["total"], "250");
        // More than allowed: refused on the first page.
        let base = serve(1, move |path| (200, vec![], page(7, page_of(path), 250)));
        let e = client(&base, 1 << 20)
            .validators(7, 200)
            .expect_err("bound");
        assert!(e.to_string().contains("max_validators"), "{e}");
        // A set for another height.
        let base = serve(1, move |path| (200, vec![], page(8, page_of(path), 5)));
        assert!(client(&base, 1 << 20).validators(7, 100).is_err());
        // A server that never fills the total (empty pages).
        let base = serve(2, move |path| {
            let mut p = page(7, page_of(path), 150);
            if page_of(path) == 2 {
                p = serde_json::to_vec(&serde_json::json!({"result": {"block_height": "7",
                    "validators": [], "count": "0", "total": "150"}}))
                .expect("json");
            }
            (200, vec![], p)
        });
        assert!(client(&base, 1 << 20).validators(7, 10_000).is_err());
    }
}
