//! A small blocking CometBFT JSON-RPC client (URI over HTTP GET) for the chain thread.
//!
//! It owns the wire side of following a chain: `/status`, `/commit?height=H`,
//! `/validators?height=H&page=P&per_page=100` (paged until `total`, bounded by
//! `chain.max_validators`) and `/broadcast_tx_sync?tx=0x<hex>`. It runs on a dedicated OS thread
//! (`ureq`, blocking), never on the tokio runtime that serves viewers.
//!
//! Everything an RPC server sends is hostile input, so nothing it sends is held beyond a budget
//! and nothing is held as a generic JSON tree:
//! - bytes: a response may be at most `chain.max_response_bytes`, and the pages of one paged
//!   answer (a validator set) share that one budget. A larger `Content-Length` than what is left
//!   is refused before a byte is read; a body without one (chunked) is cut where the budget ends;
//! - shape: bodies are parsed while they stream in, into typed structs that keep only the fields
//!   the light client uses; every other member (a hostile server's padding) is skipped as it
//!   passes, without being stored. A page keeps at most [`PER_PAGE`] validators; the signed
//!   header of `/commit` is read into the light client's own type;
//! - errors: a malformed, oversized or inconsistent response is an [`RpcError`] naming the URL and
//!   the reason, never a panic.
//!
//! Nothing here decides trust: the light-client verifier in `sutantra_chain::light` does that
//! with what this returns.

// Fed from outside the node (a CometBFT RPC node's answers): no indexing, slicing or arithmetic
// that can panic (ARCHITECTURE.md, "A fault stays where it happened"); fuzzed by
// `fuzz/fuzz_targets/chain_rpc.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::time::Duration;
use sutantra_chain::light::SignedHeader;
use sutantra_chain::light::parse::check_base64_fields;

/// Validators asked for per page (CometBFT's maximum).
pub const PER_PAGE: usize = 100;
/// The most of a non-200 body read for its error message.
const ERROR_BODY: u64 = 64 * 1024;
/// Read buffer between the socket and the streaming parser.
const READ_BUFFER: usize = 64 * 1024;

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
    /// The pages of one paged answer are together larger than allowed.
    #[error(
        "{url}: pages 1 to {pages} of this answer are together larger than {limit} bytes \
         (chain.max_response_bytes is one budget for all pages of a validator set); refused"
    )]
    PagesTooLarge {
        /// The URL of the page that went over.
        url: String,
        /// The limit.
        limit: u64,
        /// The page that went over.
        pages: usize,
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

/// The answer of `/commit?height=H`: the signed header, checked to be for `height` (nothing
/// else of the response is kept).
#[derive(Debug, Clone)]
pub struct Commit {
    /// `signed_header.header.height`.
    pub height: u64,
    /// The signed header.
    pub signed_header: SignedHeader,
}

impl Commit {
    /// The `result` of `/commit` as the core's `light_block_from_rpc` takes it.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            signed_header: &'a SignedHeader,
        }
        serde_json::to_vec(&Doc {
            signed_header: &self.signed_header,
        })
        .unwrap_or_default()
    }
}

/// One validator of a `/validators` page: the members the light client uses, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Validator {
    /// The address (hex).
    pub address: String,
    /// The public key (`{"type": "tendermint/PubKeyEd25519", "value": base64}`).
    pub pub_key: PubKey,
    /// The voting power, as CometBFT writes it (a decimal string).
    #[serde(
        alias = "power",
        alias = "total_voting_power",
        deserialize_with = "int_text"
    )]
    pub voting_power: String,
}

/// A validator's public key in CometBFT's JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PubKey {
    /// The key type, e.g. `tendermint/PubKeyEd25519`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key bytes, base64.
    pub value: String,
}

/// The validator set at one height, every page joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// The height the set is for.
    pub height: u64,
    /// The validators, in the server's order.
    pub validators: Vec<Validator>,
}

impl Validators {
    /// The `result` of `/validators` (all pages in one) as the core's `light_block_from_rpc`
    /// takes it.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            block_height: String,
            validators: &'a [Validator],
            count: String,
            total: String,
        }
        let n = self.validators.len().to_string();
        serde_json::to_vec(&Doc {
            block_height: self.height.to_string(),
            validators: &self.validators,
            count: n.clone(),
            total: n,
        })
        .unwrap_or_default()
    }
}

/// One RPC server.
#[derive(Debug, Clone)]
pub struct RpcClient {
    agent: ureq::Agent,
    base: String,
    max_bytes: u64,
}

/// Bytes a call may still read: one response's, or what the earlier pages of a paged answer
/// left of it.
#[derive(Debug, Clone, Copy)]
struct Budget {
    left: u64,
    /// The page being read (0: not a paged answer).
    page: usize,
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

    fn over_budget(&self, url: &str, budget: &Budget) -> RpcError {
        if budget.page > 1 {
            RpcError::PagesTooLarge {
                url: url.to_string(),
                limit: self.max_bytes,
                pages: budget.page,
            }
        } else {
            RpcError::TooLarge {
                url: url.to_string(),
                limit: self.max_bytes,
            }
        }
    }

    /// GETs `path` (with query) and parses the JSON-RPC `result` into `T` as the body streams
    /// in, reading at most `budget.left` bytes (and taking what it read off the budget).
    fn call<T: DeserializeOwned>(&self, path: &str, budget: &mut Budget) -> Result<T, RpcError> {
        let full = format!("{}{path}", self.base);
        // Errors name the URL; a transaction in the query is shortened to its size.
        let url = match path.split_once('?') {
            Some((p, q)) if q.len() > 80 => {
                format!("{}{p}?({} bytes of query)", self.base, q.len())
            }
            _ => full.clone(),
        };
        let mut resp = self
            .agent
            .get(&full)
            .call()
            .map_err(|e| RpcError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        let declared = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > budget.left) {
            return Err(self.over_budget(&url, budget));
        }
        let mut body = Limited::new(resp.body_mut().with_config().reader(), budget.left);
        if status != 200 {
            let out = error_answer(&mut body, status, &url);
            budget.left = budget.left.saturating_sub(body.read);
            return Err(if body.over {
                self.over_budget(&url, budget)
            } else {
                out
            });
        }
        let parsed: Result<Envelope<T>, serde_json::Error> =
            serde_json::from_reader(std::io::BufReader::with_capacity(READ_BUFFER, &mut body));
        budget.left = budget.left.saturating_sub(body.read);
        let envelope = match parsed {
            Ok(e) => e,
            Err(_) if body.over => return Err(self.over_budget(&url, budget)),
            Err(e) if e.is_io() => {
                return Err(RpcError::Unreachable {
                    url,
                    reason: format!("reading the response: {e}"),
                });
            }
            Err(e) if e.is_data() => {
                return Err(RpcError::Malformed {
                    url,
                    reason: format!("not what CometBFT sends: {e}"),
                });
            }
            Err(e) => {
                return Err(RpcError::Malformed {
                    url,
                    reason: format!("not JSON: {e}"),
                });
            }
        };
        if let Some(err) = envelope.error {
            return Err(err.into_error(url));
        }
        envelope.result.ok_or_else(|| RpcError::Malformed {
            url,
            reason: "no result object".into(),
        })
    }

    fn budget(&self) -> Budget {
        Budget {
            left: self.max_bytes,
            page: 0,
        }
    }

    /// `/status`.
    pub fn status(&self) -> Result<Status, RpcError> {
        let path = "/status";
        let r: StatusDoc = self.call(path, &mut self.budget())?;
        let url = format!("{}{path}", self.base);
        let malformed = |reason: &str| RpcError::Malformed {
            url: url.clone(),
            reason: reason.into(),
        };
        let network = r
            .node_info
            .and_then(|n| n.network)
            .ok_or_else(|| malformed("no node_info.network"))?;
        let sync = r.sync_info.unwrap_or_default();
        let latest_height = sync
            .latest_block_height
            .ok_or_else(|| malformed("no sync_info.latest_block_height"))?;
        Ok(Status {
            network,
            latest_height,
            catching_up: sync.catching_up.unwrap_or(false),
        })
    }

    /// `/commit?height=H`: the signed header, checked to be for height `height`.
    pub fn commit(&self, height: u64) -> Result<Commit, RpcError> {
        let path = format!("/commit?height={height}");
        let r: CommitDoc = self.call(&path, &mut self.budget())?;
        let url = format!("{}{path}", self.base);
        let tree = r.signed_header.ok_or_else(|| RpcError::Malformed {
            url: url.clone(),
            reason: "no signed_header".into(),
        })?;
        // Base64 the `tendermint` types' decoder would panic on is refused first (see
        // `check_base64_fields`); only then is the tree read into the light client's type.
        let signed_header: SignedHeader = check_base64_fields(&tree)
            .and_then(|()| serde_json::from_value(tree).map_err(|e| e.to_string()))
            .map_err(|reason| RpcError::Malformed {
                url: url.clone(),
                reason: format!("signed_header: {reason}"),
            })?;
        let got = signed_header.header.height.value();
        if got != height {
            return Err(RpcError::Malformed {
                url,
                reason: format!("asked for height {height}, got a header at height {got}"),
            });
        }
        Ok(Commit {
            height,
            signed_header,
        })
    }

    /// `/validators?height=H`, every page, all read within one budget of
    /// `chain.max_response_bytes`. Refuses more than `max_validators`, pages that do not add
    /// up, and a set for another height.
    pub fn validators(&self, height: u64, max_validators: usize) -> Result<Validators, RpcError> {
        let mut all: Vec<Validator> = Vec::new();
        let mut total: Option<usize> = None;
        let mut budget = self.budget();
        let max_pages = max_validators.div_ceil(PER_PAGE).max(1);
        for page in 1..=max_pages {
            let path = format!("/validators?height={height}&page={page}&per_page={PER_PAGE}");
            let url = format!("{}{path}", self.base);
            let malformed = |reason: String| RpcError::Malformed {
                url: url.clone(),
                reason,
            };
            budget.page = page;
            let r: ValidatorsPage = self.call(&path, &mut budget)?;
            if r.block_height != Some(height) {
                return Err(malformed(format!(
                    "asked for the validators at height {height}, got block_height {:?}",
                    r.block_height
                )));
            }
            let page_total = r
                .total
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
                .validators
                .ok_or_else(|| malformed("no validators array".into()))?;
            if list.count == 0
                || list.count > PER_PAGE
                || all.len().saturating_add(list.count) > page_total
            {
                return Err(malformed(format!(
                    "page {page} holds {} validators; with {} before it that does not add up to \
                     total {page_total}",
                    list.count,
                    all.len()
                )));
            }
            all.extend(list.kept);
            if all.len() == page_total {
                return Ok(Validators {
                    height,
                    validators: all,
                });
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
        let r: BroadcastDoc = self.call(&path, &mut self.budget())?;
        let url = format!("{}/broadcast_tx_sync", self.base);
        let code =
            r.code
                .and_then(|c| u32::try_from(c).ok())
                .ok_or_else(|| RpcError::Malformed {
                    url: url.clone(),
                    reason: "no code".into(),
                })?;
        let text = |t: Option<String>| t.unwrap_or_default().chars().take(1000).collect();
        Ok(Broadcast {
            code,
            log: text(r.log),
            codespace: text(r.codespace),
            hash: text(r.hash),
        })
    }
}

/// The error an answer with a non-200 status carries: the JSON-RPC error in it, or the start of
/// the body. Reads at most [`ERROR_BODY`] bytes of it.
fn error_answer(body: &mut Limited<impl Read>, status: u16, url: &str) -> RpcError {
    let mut text = Vec::new();
    if let Err(e) = body.by_ref().take(ERROR_BODY).read_to_end(&mut text)
        && !body.over
    {
        return RpcError::Unreachable {
            url: url.into(),
            reason: format!("HTTP {status}, and reading its body failed: {e}"),
        };
    }
    if let Ok(Envelope::<IgnoredAny> {
        error: Some(err), ..
    }) = serde_json::from_slice(&text)
    {
        return err.into_error(url.into());
    }
    RpcError::Status {
        url: url.into(),
        status,
        body: String::from_utf8_lossy(text.get(..200).unwrap_or(&text)).into_owned(),
    }
}

/// A body reader that yields at most `left` bytes; one byte more sets `over` and fails the read
/// (so a parser stops there). Counts what it read.
struct Limited<R> {
    inner: R,
    left: u64,
    read: u64,
    over: bool,
}

impl<R: Read> Limited<R> {
    fn new(inner: R, left: u64) -> Self {
        Self {
            inner,
            left,
            read: 0,
            over: false,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.over {
            return Err(std::io::Error::other("over the byte budget"));
        }
        if self.left == 0 {
            // Exactly at the budget is fine; a byte more is not.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.over = true;
            return Err(std::io::Error::other("over the byte budget"));
        }
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match buf.get_mut(..max) {
            Some(b) => self.inner.read(b)?,
            None => 0,
        };
        self.left = self.left.saturating_sub(n as u64);
        self.read = self.read.saturating_add(n as u64);
        Ok(n)
    }
}

// ---- the shapes read off the wire: only what is used; everything else is skipped unstored ----

/// A JSON-RPC envelope: `result` and `error`; `jsonrpc`, `id` and anything else are skipped.
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
struct Envelope<T> {
    #[serde(default)]
    result: Option<T>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default, deserialize_with = "lenient_i64")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_text")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    data: Option<String>,
}

impl ErrorObject {
    fn into_error(self, url: String) -> RpcError {
        let message = [self.message, self.data]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        RpcError::Rpc {
            url,
            code: self.code.unwrap_or(0),
            message: message.chars().take(500).collect(),
        }
    }
}

#[derive(Deserialize)]
struct StatusDoc {
    #[serde(default)]
    node_info: Option<NodeInfo>,
    #[serde(default)]
    sync_info: Option<SyncInfo>,
}

#[derive(Deserialize)]
struct NodeInfo {
    #[serde(default, deserialize_with = "lenient_text")]
    network: Option<String>,
}

#[derive(Deserialize, Default)]
struct SyncInfo {
    #[serde(default, deserialize_with = "lenient_u64")]
    latest_block_height: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    catching_up: Option<bool>,
}

#[derive(Deserialize)]
struct CommitDoc {
    /// Kept as a tree (one header and its commit, within the byte budget) so that its base64 is
    /// checked before the `tendermint` types decode it.
    #[serde(default)]
    signed_header: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ValidatorsPage {
    #[serde(default, deserialize_with = "lenient_u64")]
    block_height: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    total: Option<u64>,
    #[serde(default, deserialize_with = "page_list")]
    validators: Option<PageList>,
}

/// A page's validators: the first [`PER_PAGE`] kept, and how many the page held.
struct PageList {
    kept: Vec<Validator>,
    count: usize,
}

#[derive(Deserialize)]
struct BroadcastDoc {
    #[serde(default, deserialize_with = "lenient_u64")]
    code: Option<u64>,
    #[serde(default, deserialize_with = "lenient_text")]
    log: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    codespace: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    hash: Option<String>,
}

/// A JSON scalar as read; an object or array is skipped (not stored) and reads as `Other`.
enum Scalar {
    Text(String),
    Unsigned(u64),
    Signed(i64),
    Bool(bool),
    Other,
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Text(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// A JSON number or a decimal string (CometBFT writes 64-bit integers as strings); `None` for
/// anything else.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Text(s) => s.trim().parse().ok(),
        Scalar::Unsigned(n) => Some(n),
        _ => None,
    })
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Text(s) => s.trim().parse().ok(),
        Scalar::Unsigned(n) => i64::try_from(n).ok(),
        Scalar::Signed(n) => Some(n),
        _ => None,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Bool(b) => Some(b),
        _ => None,
    })
}

/// A string; `None` for anything else.
fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match scalar(d)? {
        Scalar::Text(s) => Some(s),
        _ => None,
    })
}

/// An integer as CometBFT writes it (a decimal string), from a string or a number.
fn int_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match scalar(d)? {
        Scalar::Text(s) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().to_string()),
        Scalar::Unsigned(n) => Ok(n.to_string()),
        Scalar::Signed(n) => Ok(n.to_string()),
        _ => Err(de::Error::custom("an integer, or a decimal string")),
    }
}

/// A page's `validators` array: the first [`PER_PAGE`] entries kept, the rest counted and
/// skipped; `None` when it is not an array.
fn page_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PageList>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Option<PageList>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of validators")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut kept = Vec::new();
            let mut count = 0usize;
            loop {
                if kept.len() < PER_PAGE {
                    match seq.next_element::<Validator>()? {
                        Some(v) => kept.push(v),
                        None => break,
                    }
                } else if seq.next_element::<IgnoredAny>()?.is_none() {
                    break;
                }
                count = count.saturating_add(1);
            }
            Ok(Some(PageList { kept, count }))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(ListVisitor)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
pub(crate) mod tests {
    use super::*;
    use serde_json::Value;
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
        assert_eq!(r.height, 10);
        assert_eq!(
            r.signed_header.commit.block_id.hash.to_string(),
            "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE"
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
        assert_eq!(r.validators.len(), 250);
        assert_eq!(r.height, 7);
        let doc: Value = serde_json::from_slice(&r.to_json()).expect("JSON");
        assert_eq!(doc["total"], "250");
        assert_eq!(doc["validators"][249]["voting_power"], "10");
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

    fn validator(i: usize) -> Value {
        serde_json::json!({"address": format!("{i:040X}"),
            "pub_key": {"type": "tendermint/PubKeyEd25519", "value": "AAAA"},
            "voting_power": "10", "proposer_priority": "0"})
    }

    fn page_of(path: &str) -> usize {
        path.split("page=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(1)
    }

    /// Page `p` of a set of `total` at height 7, each page padded with `pad` bytes of junk.
    fn padded_page(p: usize, total: usize, pad: usize) -> Vec<u8> {
        let from = (p - 1) * PER_PAGE;
        let list: Vec<Value> = (from..total.min(from + PER_PAGE)).map(validator).collect();
        serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {
            "block_height": "7", "validators": list, "padding": "x".repeat(pad),
            "count": list.len().to_string(), "total": total.to_string()}}))
        .expect("json")
    }

    #[test]
    fn the_pages_of_a_validator_set_share_one_byte_budget() {
        let page_len = padded_page(1, 300, 20_000).len() as u64;
        for chunked in [false, true] {
            let headers = move || {
                if chunked {
                    vec![("Transfer-Encoding".to_string(), "chunked".to_string())]
                } else {
                    vec![]
                }
            };
            // Each page fits the limit; three of them do not.
            let base = serve(3, move |path| {
                (200, headers(), padded_page(page_of(path), 300, 20_000))
            });
            let e = client(&base, page_len * 5 / 2)
                .validators(7, 10_000)
                .expect_err("three pages over the budget");
            assert!(
                matches!(e, RpcError::PagesTooLarge { pages: 3, .. }),
                "chunked {chunked}: {e}"
            );
            let text = e.to_string();
            assert!(
                text.contains("page=3") && text.contains("max_response_bytes"),
                "{text}"
            );
            // The same pages within a budget that holds them all.
            let base = serve(3, move |path| {
                (200, headers(), padded_page(page_of(path), 300, 20_000))
            });
            let r = client(&base, page_len * 3 + 1024)
                .validators(7, 10_000)
                .expect("within the budget");
            assert_eq!(r.validators.len(), 300);
        }
        // One page over the whole budget is refused as before (before parsing).
        let base = serve(1, move |path| {
            (200, vec![], padded_page(page_of(path), 300, 20_000))
        });
        let e = client(&base, page_len - 1)
            .validators(7, 10_000)
            .expect_err("one page over");
        assert!(matches!(e, RpcError::TooLarge { .. }), "{e}");
    }

    #[test]
    fn padding_and_unknown_fields_are_skipped_not_kept() {
        // Junk everywhere: around the envelope, in the result, inside every validator, deeply
        // nested, and in a member the client reads but not in the shape it reads.
        let nested = format!("{}0{}", "[".repeat(100), "]".repeat(100));
        let junk = serde_json::json!({"a": vec![0; 2000], "b": "y".repeat(50_000)});
        let page = move |p: usize| {
            let from = (p - 1) * PER_PAGE;
            let list: Vec<Value> = (from..(from + PER_PAGE).min(150))
                .map(|i| {
                    let mut v = validator(i);
                    v["padding"] = junk.clone();
                    v["power_history"] = serde_json::json!([1, 2, 3]);
                    v
                })
                .collect();
            let body = serde_json::json!({"jsonrpc": "2.0", "id": -1, "padding": junk.clone(),
                "result": {"block_height": "7", "validators": list, "extra": {"deep": junk.clone()},
                "count": list.len().to_string(), "total": "150"}});
            let text = serde_json::to_string(&body).expect("json");
            // A deeply nested array too (skipped without being built).
            text.replacen("\"extra\"", &format!("\"nested\":{nested},\"extra\""), 1)
                .into_bytes()
        };
        let base = serve(2, move |path| (200, vec![], page(page_of(path))));
        let r = client(&base, 64 << 20)
            .validators(7, 10_000)
            .expect("padded pages");
        assert_eq!(r.validators.len(), 150);
        assert_eq!(
            r.validators[0],
            serde_json::from_value(validator(0)).expect("v")
        );
        let json = r.to_json();
        assert!(
            json.len() < 150 * 200,
            "what is kept of 150 validators is {} bytes",
            json.len()
        );
        assert!(!String::from_utf8_lossy(&json).contains("padding"));

        // /status and /commit with padding: only the fields used are kept.
        let status = recorded("status.json");
        let mut v: Value = serde_json::from_slice(&status).expect("status");
        v["result"]["padding"] = Value::from("z".repeat(100_000));
        v["result"]["node_info"]["other"] = serde_json::json!([[[{"x": 1}]]]);
        let status = serde_json::to_vec(&v).expect("json");
        let mut commit: Value =
            serde_json::from_slice(&recorded("commit_at_height_10.json")).expect("commit");
        commit["result"]["padding"] = Value::from("z".repeat(100_000));
        commit["result"]["signed_header"]["header"]["padding"] = Value::from("z".repeat(100_000));
        commit["result"]["signed_header"]["commit"]["signatures"][0]["padding"] =
            serde_json::json!([vec!["zzzz"; 1000]]);
        let commit = serde_json::to_vec(&commit).expect("json");
        let base = serve(2, move |path| {
            let body = if path.starts_with("/status") {
                status.clone()
            } else {
                commit.clone()
            };
            (200, vec![], body)
        });
        let c = client(&base, 1 << 20);
        assert_eq!(c.status().expect("status").latest_height, 232);
        let commit = c.commit(10).expect("commit");
        assert!(!String::from_utf8_lossy(&commit.to_json()).contains("zzzz"));
    }

    #[test]
    fn a_page_with_too_many_validators_is_refused_without_keeping_them() {
        let base = serve(1, move |_| {
            let list: Vec<Value> = (0..5000).map(validator).collect();
            let body = serde_json::json!({"result": {"block_height": "7", "validators": list,
                "count": "5000", "total": "9000"}});
            (200, vec![], serde_json::to_vec(&body).expect("json"))
        });
        let e = client(&base, 4 << 20)
            .validators(7, 10_000)
            .expect_err("5000 on a page");
        assert!(
            e.to_string().contains("page 1 holds 5000 validators"),
            "{e}"
        );
        // A validators member that is not an array, and a validator without a key.
        let base = serve(2, move |path| {
            let body = if page_of(path) == 1 && !path.contains("height=8") {
                serde_json::json!({"result": {"block_height": "7", "validators": {"a": 1},
                    "total": "1"}})
            } else {
                serde_json::json!({"result": {"block_height": "8",
                    "validators": [{"address": "AA", "voting_power": "1"}], "total": "1"}})
            };
            (200, vec![], serde_json::to_vec(&body).expect("json"))
        });
        let c = client(&base, 1 << 20);
        let e = c.validators(7, 100).expect_err("not an array");
        assert!(e.to_string().contains("no validators array"), "{e}");
        let e = c.validators(8, 100).expect_err("no pub_key");
        assert!(
            matches!(&e, RpcError::Malformed { reason, .. } if reason.contains("pub_key")),
            "{e}"
        );
    }
}
