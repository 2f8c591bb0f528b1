//! The light validator's commands: `sutantra chain ...`, `sutantra keys show`,
//! `sutantra attest ...`.
//!
//! `chain verify` is DESIGN.md's contract: the first line printed is exactly `SUCCESS`,
//! `NOT_ENOUGH_TRUST` or `INVALID: <reason>`; exit 0 only for SUCCESS, 1 for the other verdicts,
//! 2 for bad arguments or unreadable files (message on stderr). `attest verify` follows the same
//! pattern with `OK` / `INVALID: <which, why>`. With `--json`, a verdict command still prints its
//! verdict line first and adds the details as one JSON object on the second line; the other
//! commands print only JSON.
//!
//! Commands that read the node's state open the store read-only (redb's `SingleWriter` mode), so
//! they work beside a running node; `chain resume` writes and needs the node stopped. Exit codes
//! of the data commands: 0 done, 1 failure (message on stderr), 2 bad arguments.

use crate::config::chain::parse_trust_level;
use crate::config::duration::parse_duration;
use crate::validator::chain::rfc3339;
use crate::validator::chain::sync::signed_header_hash;
use crate::validator::keys;
use crate::validator::store::{OutboxEntry, OutboxStatus, Store};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use sutantra_core::attest::{SignedAttestation, check_anchor, node_id, verify_chain};
use sutantra_core::chain::{
    ChainError, ParseLimits, Sha256Provider, SignedHeader, VerifyOptions, header_hash,
    parse_light_block, parse_light_block_with, parse_time, parse_trusted, tendermint, verify_step,
};

/// `println!` that ignores a closed standard output (`sutantra attest list | head` must not
/// panic on the broken pipe).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Largest file a command reads (light blocks hold at most 10 000 validators).
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// `--data-dir DIR` on every command that reads the node's state.
#[derive(Debug, Args)]
pub struct DataDir {
    /// Where the node keeps its state (as `sutantra run --data-dir`).
    #[arg(long, value_name = "DIR", default_value = "sutantra-data")]
    pub data_dir: PathBuf,
}

/// `sutantra chain ...`
#[derive(Debug, Subcommand)]
pub enum ChainCmd {
    /// Verify one light block against a trusted one, offline (CometBFT light-client rules).
    ///
    /// Prints exactly `SUCCESS`, `NOT_ENOUGH_TRUST` or `INVALID: <reason>` on the first line;
    /// exit 0 only for SUCCESS, 1 for the other verdicts, 2 for bad arguments or files.
    Verify(VerifyArgs),
    /// Show the trusted state in the store: height, hash, time, and whether attestations are
    /// halted.
    Status {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a trusted light block from the store as JSON (the newest, or HEIGHT): a header
    /// file for `sutantra attest verify --header`.
    Header {
        /// The height (default: the newest kept).
        height: Option<u64>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Clear the halt set by a witness conflict, after an operator checked both servers.
    ///
    /// Stop the node first; it resumes attesting on its next start.
    Resume {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sutantra chain verify` arguments (DESIGN.md section 3).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Trusted state: JSON with `signed_header` and `next_validator_set` (CometBFT RPC encoding).
    #[arg(long, value_name = "FILE")]
    pub trusted: PathBuf,
    /// Block to verify: JSON with `signed_header`, `validator_set` and `next_validator_set`.
    #[arg(long, value_name = "FILE")]
    pub untrusted: PathBuf,
    /// The time of the check, RFC 3339 (e.g. `2024-05-01T12:00:00Z`).
    #[arg(long, value_name = "RFC3339")]
    pub now: String,
    /// How long the trusted header vouches: `10s`, `2h`, `14d`, or nanoseconds.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub trusting_period: String,
    /// Trust level N/D (1/3 to 1).
    #[arg(
        long,
        value_name = "N/D",
        default_value = "1/3",
        allow_hyphen_values = true
    )]
    pub trust_level: String,
    /// Largest clock difference tolerated: `10s`, or nanoseconds.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        allow_hyphen_values = true
    )]
    pub clock_drift: String,
    /// Also print the details as JSON on the second line.
    #[arg(long)]
    pub json: bool,
}

/// `sutantra keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Print the node's public key (hex) and node id; never the secret.
    ///
    /// Creates the key (mode 0600) if there is none yet, exactly as the node's first start
    /// would, so a node can be registered before it first runs.
    Show {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `sutantra attest ...`
#[derive(Debug, Subcommand)]
pub enum AttestCmd {
    /// List the attestations in the outbox: seq, status, anchor, frames, bytes, times.
    List {
        #[command(flatten)]
        dir: DataDir,
        /// Print a JSON array of objects (byte fields in hex).
        #[arg(long)]
        json: bool,
    },
    /// Show every field of one attestation.
    Show {
        /// The attestation's sequence number.
        seq: u64,
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON (byte fields in hex).
        #[arg(long)]
        json: bool,
    },
    /// Write attestations as a JSON array of hex strings (the signed bytes), oldest first: the
    /// file another node checks with `sutantra attest verify`. FILE `-` is standard output.
    Export {
        /// Output file.
        file: PathBuf,
        /// First seq to export.
        #[arg(long, value_name = "SEQ")]
        from: Option<u64>,
        /// Last seq to export.
        #[arg(long, value_name = "SEQ")]
        to: Option<u64>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Check a file of attestations (any node's): every signature, consecutive seqs, the chain of
    /// prev-hashes and, with `--header`, the anchor of those anchored at that header's height.
    ///
    /// Prints `OK` or `INVALID: <which, why>` on the first line; exit 0 only for OK, 1 for
    /// INVALID, 2 for unreadable files.
    Verify {
        /// JSON array of hex-encoded signed attestations (`sutantra attest export`).
        file: PathBuf,
        /// A header you trust: light block, `/commit` result, signed header or header JSON.
        #[arg(long, value_name = "FILE")]
        header: Option<PathBuf>,
        /// Also print the details as JSON on the second line.
        #[arg(long)]
        json: bool,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sutantra: {msg}");
    ExitCode::from(1)
}

fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sutantra: {msg}");
    ExitCode::from(2)
}

/// Reads a file of at most [`MAX_FILE_BYTES`].
fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    let what = |e: &dyn std::fmt::Display| format!("{flag} {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| what(&e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(what(&format!(
            "{} bytes, more than the {MAX_FILE_BYTES} read",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| what(&e))
}

// ---- chain ----

/// `sutantra chain ...`.
pub fn chain(cmd: ChainCmd) -> ExitCode {
    match cmd {
        ChainCmd::Verify(args) => chain_verify(&args),
        ChainCmd::Status { dir, json } => chain_status(&dir.data_dir, json),
        ChainCmd::Header { height, dir } => chain_header(&dir.data_dir, height),
        ChainCmd::Resume { dir, json } => chain_resume(&dir.data_dir, json),
    }
}

fn chain_header(data_dir: &Path, height: Option<u64>) -> ExitCode {
    let store = match open_for_reading(data_dir) {
        Ok(Some(s)) => s,
        Ok(None) => return fail(format!("no store in {}", data_dir.display())),
        Err(code) => return code,
    };
    let found = match height {
        Some(h) => store.trusted_at(h).map(|b| b.map(|b| (h, b))),
        None => store.latest_trusted(),
    };
    match found {
        Ok(Some((_, bytes))) => {
            out!("{}", String::from_utf8_lossy(&bytes));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            let kept = store.trusted_heights().unwrap_or_default();
            fail(format!(
                "no trusted light block{} in the store (kept: {kept:?})",
                height
                    .map(|h| format!(" at height {h}"))
                    .unwrap_or_default()
            ))
        }
        Err(e) => fail(e),
    }
}

fn chain_verify(a: &VerifyArgs) -> ExitCode {
    let trusting_period = match parse_duration(&a.trusting_period) {
        Ok(d) => d,
        Err(e) => return usage(format!("--trusting-period: {e}")),
    };
    let clock_drift = match parse_duration(&a.clock_drift) {
        Ok(d) => d,
        Err(e) => return usage(format!("--clock-drift: {e}")),
    };
    let trust_threshold = match parse_trust_level(&a.trust_level) {
        Ok(t) => t,
        Err(e) => return usage(format!("--trust-level: {e}")),
    };
    let opts = VerifyOptions {
        trust_threshold,
        trusting_period,
        clock_drift,
    };
    if let Err(e) = opts.validate() {
        return usage(format!("--trust-level / --trusting-period: {e}"));
    }
    let now = match parse_time(&a.now) {
        Ok(t) => t,
        Err(e) => return usage(format!("--now: {e}")),
    };
    let trusted = match read_file("--trusted", &a.trusted).and_then(|b| {
        parse_trusted(&b).map_err(|e| format!("--trusted {}: {e}", a.trusted.display()))
    }) {
        Ok(t) => t,
        Err(e) => return usage(e),
    };
    let bytes = match read_file("--untrusted", &a.untrusted) {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let untrusted = match parse_light_block(&bytes) {
        Ok(b) => b,
        // Not a light block at all: a bad file, not a verdict.
        Err(
            e @ (ChainError::Json { .. }
            | ChainError::MissingField { .. }
            | ChainError::TooLarge { .. }
            | ChainError::Rpc { .. }),
        ) => return usage(format!("--untrusted {}: {e}", a.untrusted.display())),
        // A light block that cannot be valid (too many validators, inconsistent sets...).
        Err(e) => {
            let reason = e
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            out!("INVALID: {reason}");
            if a.json {
                out!("{}", json!({"verdict": "INVALID", "reason": reason}));
            }
            return ExitCode::from(1);
        }
    };
    let verdict = verify_step(&trusted, &untrusted, &opts, now);
    out!("{verdict}");
    let (word, reason) = match &verdict {
        sutantra_core::chain::Verdict::Success => ("SUCCESS", None),
        sutantra_core::chain::Verdict::NotEnoughTrust(r) => ("NOT_ENOUGH_TRUST", Some(r.clone())),
        sutantra_core::chain::Verdict::Invalid(r) => ("INVALID", Some(r.clone())),
    };
    if a.json {
        out!(
            "{}",
            json!({
                "verdict": word,
                "reason": reason,
                "trusted_height": trusted.height(),
                "untrusted_height": untrusted.signed_header.header.height.value(),
                "untrusted_hash": hex::encode_upper(header_hash(&untrusted)),
            })
        );
    } else if let Some(r) = reason.filter(|_| word == "NOT_ENOUGH_TRUST") {
        eprintln!("{r}");
    }
    if verdict.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn open_for_reading(data_dir: &Path) -> Result<Option<Store>, ExitCode> {
    Store::open_read_only(data_dir).map_err(fail)
}

fn chain_status(data_dir: &Path, as_json: bool) -> ExitCode {
    let store = match open_for_reading(data_dir) {
        Ok(Some(s)) => s,
        Ok(None) => {
            if as_json {
                out!(
                    "{}",
                    json!({"store": null, "chain_id": null, "trusted_height": null, "halted": false})
                );
            } else {
                out!(
                    "no store in {}: the node has not run there yet",
                    data_dir.display()
                );
            }
            return ExitCode::SUCCESS;
        }
        Err(code) => return code,
    };
    let status = match status_json(&store) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if as_json {
        out!("{status}");
        return ExitCode::SUCCESS;
    }
    let s = |k: &str| match &status[k] {
        Value::Null => "-".to_string(),
        Value::String(x) => x.clone(),
        v => v.to_string(),
    };
    out!("store:          {}", s("store"));
    out!("chain:          {}", s("chain_id"));
    out!("trust root:     {}", s("trust_root"));
    out!("trusted height: {}", s("trusted_height"));
    out!("trusted hash:   {}", s("trusted_hash"));
    out!("header time:    {}", s("trusted_time"));
    out!("verified at:    {}", s("last_verified"));
    out!("heights kept:   {}", s("heights_kept"));
    if status["halted"] == Value::Bool(true) {
        out!(
            "halted:         YES since {}: {}",
            s("halted_since"),
            s("halt_reason")
        );
        out!(
            "                check both RPC servers, stop the node, then run \
             `sutantra chain resume --data-dir {}`",
            data_dir.display()
        );
    } else {
        out!("halted:         no");
    }
    let o = &status["outbox"];
    out!(
        "attestations:   next seq {}, outbox {} ({} pending), {} dropped",
        o["next_seq"],
        o["entries"],
        o["pending"],
        o["dropped"]
    );
    ExitCode::SUCCESS
}

fn status_json(store: &Store) -> Result<Value, String> {
    let meta = store.meta().map_err(|e| e.to_string())?;
    let heights = store.trusted_heights().map_err(|e| e.to_string())?;
    let latest = store.latest_trusted().map_err(|e| e.to_string())?;
    let (mut hash, mut time) = (Value::Null, Value::Null);
    if let Some((_, bytes)) = &latest {
        match parse_light_block_with(bytes, &ParseLimits::default()) {
            Ok(b) => {
                hash = json!(hex::encode_upper(header_hash(&b)));
                time = json!(b.signed_header.header.time.to_rfc3339());
            }
            Err(e) => hash = json!(format!("damaged: {e}")),
        }
    }
    let halted = meta.halted.as_ref();
    Ok(json!({
        "store": store.path(),
        "chain_id": (!meta.chain_id.is_empty()).then_some(&meta.chain_id),
        "trust_root": (!meta.trust_root.is_empty()).then_some(&meta.trust_root),
        "trusted_height": latest.as_ref().map(|(h, _)| *h),
        "trusted_hash": hash,
        "trusted_time": time,
        "last_verified_unix": (meta.last_verified_unix > 0).then_some(meta.last_verified_unix),
        "last_verified": (meta.last_verified_unix > 0).then(|| rfc3339(meta.last_verified_unix)),
        "heights_kept": heights,
        "halted": halted.is_some(),
        "halt_reason": halted.map(|h| h.reason.clone()),
        "halted_since": halted.map(|h| rfc3339(h.since_unix)),
        "outbox": {
            "next_seq": meta.next_seq,
            "entries": store.outbox_len().map_err(|e| e.to_string())?,
            "pending": store.pending_count().map_err(|e| e.to_string())?,
            "dropped": meta.outbox_dropped,
        },
    }))
}

fn chain_resume(data_dir: &Path, as_json: bool) -> ExitCode {
    if !crate::validator::store::store_path(data_dir).exists() {
        return fail(format!(
            "no store in {}: nothing to resume",
            data_dir.display()
        ));
    }
    let store = match Store::open(data_dir, Duration::ZERO) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match store.clear_halted() {
        Ok(was) => {
            if as_json {
                out!(
                    "{}",
                    json!({"resumed": was.is_some(),
                           "was_halted_since": was.as_ref().map(|h| rfc3339(h.since_unix)),
                           "reason": was.as_ref().map(|h| h.reason.clone())})
                );
            } else {
                match was {
                    Some(h) => out!(
                        "resumed: attestations were halted since {}: {}\n\
                         they start again when the node starts",
                        rfc3339(h.since_unix),
                        h.reason
                    ),
                    None => out!("not halted: nothing to do"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

// ---- keys ----

/// `sutantra keys ...`.
pub fn keys(cmd: KeysCmd) -> ExitCode {
    match cmd {
        KeysCmd::Show { dir, json: as_json } => {
            let (kp, created) = match keys::load_or_create(&dir.data_dir) {
                Ok(k) => k,
                Err(e) => return fail(e),
            };
            let path = keys::key_path(&dir.data_dir);
            if created {
                eprintln!("created a new node key in {}", path.display());
            }
            let pk = keys::public_key_hex(&kp);
            let id = node_id(&kp.pk);
            if as_json {
                out!(
                    "{}",
                    json!({"public_key": pk, "node_id": id, "key_file": path, "created": created})
                );
            } else {
                out!("public_key: {pk}");
                out!("node_id:    {id}");
                out!("key_file:   {}", path.display());
            }
            ExitCode::SUCCESS
        }
    }
}

// ---- attest ----

/// `sutantra attest ...`.
pub fn attest(cmd: AttestCmd) -> ExitCode {
    match cmd {
        AttestCmd::List { dir, json } => attest_list(&dir.data_dir, json),
        AttestCmd::Show { seq, dir, json } => attest_show(&dir.data_dir, seq, json),
        AttestCmd::Export {
            file,
            from,
            to,
            dir,
        } => attest_export(&dir.data_dir, &file, from, to),
        AttestCmd::Verify { file, header, json } => attest_verify(&file, header.as_deref(), json),
    }
}

fn entries(data_dir: &Path, from: u64, to: u64) -> Result<Vec<OutboxEntry>, ExitCode> {
    match open_for_reading(data_dir)? {
        None => Ok(Vec::new()),
        Some(s) => s.outbox(from, to).map_err(fail),
    }
}

/// `2024-05-01T12:00:00.123456Z` for microseconds since the epoch.
fn rfc3339_us(us: u64) -> String {
    let base = rfc3339(us / 1_000_000);
    format!("{}.{:06}Z", base.trim_end_matches('Z'), us % 1_000_000)
}

/// An outbox entry as JSON; `full` adds the signature and the raw bytes.
fn entry_json(e: &OutboxEntry, full: bool) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "status": e.status.name(),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "stored_unix": e.stored_unix,
        "stored": rfc3339(e.stored_unix),
    });
    match &e.status {
        OutboxStatus::Pending => {}
        OutboxStatus::Submitted { tx_hash, height } => {
            v["tx_hash"] = json!(tx_hash);
            v["tx_height"] = json!(height);
        }
        OutboxStatus::Rejected { code, log } => {
            v["code"] = json!(code);
            v["log"] = json!(log);
        }
    }
    match SignedAttestation::from_bytes(&e.signed) {
        Ok(s) => {
            let a = &s.attestation;
            let fields = json!({
                "version": a.version,
                "chain_id": a.chain_id,
                "anchor_height": a.anchor_height,
                "anchor_hash": hex::encode(a.anchor_hash),
                "stream_id": a.stream_id,
                "segment_seq": a.segment_seq,
                "first_rtp_ts": a.first_rtp_ts,
                "last_rtp_ts": a.last_rtp_ts,
                "first_capture_us": a.first_capture_us,
                "last_capture_us": a.last_capture_us,
                "first_capture": rfc3339_us(a.first_capture_us),
                "last_capture": rfc3339_us(a.last_capture_us),
                "frame_count": a.frame_count,
                "byte_count": a.byte_count,
                "merkle_root": hex::encode(a.merkle_root),
                "prev_hash": hex::encode(a.prev_hash),
                "node_id": s.node_id(),
                "public_key": hex::encode(s.public_key),
                "hash": hex::encode(s.hash()),
            });
            if let (Value::Object(dst), Value::Object(src)) = (&mut v, fields) {
                dst.extend(src);
            }
            if full {
                v["signature"] = json!(hex::encode(s.signature));
            }
        }
        Err(err) => v["error"] = json!(format!("the stored bytes do not decode: {err}")),
    }
    if full {
        v["signed_bytes"] = json!(hex::encode(&e.signed));
    }
    v
}

fn attest_list(data_dir: &Path, as_json: bool) -> ExitCode {
    let list = match entries(data_dir, 0, u64::MAX) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if as_json {
        let arr: Vec<Value> = list.iter().map(|e| entry_json(e, false)).collect();
        out!("{}", Value::Array(arr));
        return ExitCode::SUCCESS;
    }
    if list.is_empty() {
        out!("no attestations in {}", data_dir.display());
        return ExitCode::SUCCESS;
    }
    out!(
        "{:>8}  {:<9}  {:>10}  {:>6}  {:>10}  {:<27}  {:<27}",
        "SEQ",
        "STATUS",
        "ANCHOR",
        "FRAMES",
        "BYTES",
        "FIRST CAPTURE",
        "LAST CAPTURE"
    );
    for e in &list {
        let v = entry_json(e, false);
        let field = |k: &str| match &v[k] {
            Value::Null => "?".to_string(),
            Value::String(s) => s.clone(),
            x => x.to_string(),
        };
        out!(
            "{:>8}  {:<9}  {:>10}  {:>6}  {:>10}  {:<27}  {:<27}",
            e.seq,
            e.status.name(),
            field("anchor_height"),
            field("frame_count"),
            field("byte_count"),
            field("first_capture"),
            field("last_capture"),
        );
    }
    ExitCode::SUCCESS
}

fn attest_show(data_dir: &Path, seq: u64, as_json: bool) -> ExitCode {
    let entry = match open_for_reading(data_dir) {
        Err(code) => return code,
        Ok(None) => None,
        Ok(Some(s)) => match s.outbox_entry(seq) {
            Ok(e) => e,
            Err(e) => return fail(e),
        },
    };
    let Some(entry) = entry else {
        return fail(format!(
            "no attestation with seq {seq} in {} (see `sutantra attest list`)",
            data_dir.display()
        ));
    };
    let v = entry_json(&entry, true);
    if as_json {
        out!("{v}");
    } else if let Value::Object(m) = &v {
        for (k, x) in m {
            let text = match x {
                Value::Null => "-".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out!("{k:<17} {text}");
        }
    }
    ExitCode::SUCCESS
}

fn attest_export(data_dir: &Path, file: &Path, from: Option<u64>, to: Option<u64>) -> ExitCode {
    let list = match entries(data_dir, from.unwrap_or(0), to.unwrap_or(u64::MAX)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let arr: Vec<String> = list.iter().map(|e| hex::encode(&e.signed)).collect();
    let text = match serde_json::to_string_pretty(&arr) {
        Ok(t) => t + "\n",
        Err(e) => return fail(e),
    };
    if file == Path::new("-") {
        out!("{}", text.trim_end());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = std::fs::write(file, text) {
        return fail(format!("cannot write {}: {e}", file.display()));
    }
    eprintln!(
        "exported {} attestation(s){} to {}",
        arr.len(),
        match (list.first(), list.last()) {
            (Some(a), Some(b)) => format!(" (seq {}..={})", a.seq, b.seq),
            _ => String::new(),
        },
        file.display()
    );
    ExitCode::SUCCESS
}

/// The hex strings of an export file: an array of hex strings (or of objects with a
/// `signed_bytes` field), or one hex string.
fn export_items(v: &Value) -> Result<Vec<String>, String> {
    let item = |x: &Value| -> Result<String, String> {
        x.as_str()
            .or_else(|| x.get("signed_bytes").and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| format!("{x:.60} is not a hex string"))
    };
    match v {
        Value::Array(a) => a.iter().map(item).collect(),
        Value::String(s) => Ok(vec![s.clone()]),
        _ => Err("expected a JSON array of hex strings (sutantra attest export)".into()),
    }
}

/// A trusted header from a file: `(height, chain id, hash)`. Accepts a light block, a
/// `/commit` answer (with or without the JSON-RPC envelope), a signed header or a bare header.
fn header_from(v: &Value) -> Result<(u64, String, [u8; 32]), String> {
    let root = v.get("result").unwrap_or(v);
    if let Some(sh) = root.get("signed_header") {
        let sh: SignedHeader =
            serde_json::from_value(sh.clone()).map_err(|e| format!("signed_header: {e}"))?;
        return Ok((
            sh.header.height.value(),
            sh.header.chain_id.as_str().to_string(),
            signed_header_hash(&sh),
        ));
    }
    let header = root.get("header").unwrap_or(root);
    let h: tendermint::block::Header =
        serde_json::from_value(header.clone()).map_err(|e| format!("header: {e}"))?;
    let hash = <[u8; 32]>::try_from(h.hash_with::<Sha256Provider>().as_bytes())
        .map_err(|_| "the header hash is not SHA-256".to_string())?;
    Ok((h.height.value(), h.chain_id.as_str().to_string(), hash))
}

fn attest_verify(file: &Path, header: Option<&Path>, as_json: bool) -> ExitCode {
    let doc: Value = match read_file("FILE", file).and_then(|b| {
        serde_json::from_slice(&b).map_err(|e| format!("{}: not JSON: {e}", file.display()))
    }) {
        Ok(v) => v,
        Err(e) => return usage(e),
    };
    let header = match header {
        None => None,
        Some(p) => match read_file("--header", p).and_then(|b| {
            serde_json::from_slice::<Value>(&b)
                .map_err(|e| format!("--header {}: not JSON: {e}", p.display()))
                .and_then(|v| header_from(&v).map_err(|e| format!("--header {}: {e}", p.display())))
        }) {
            Ok(h) => Some(h),
            Err(e) => return usage(e),
        },
    };
    let verdict = check_export(&doc, header.as_ref());
    let (first, details) = match &verdict {
        Ok(d) => ("OK".to_string(), d.clone()),
        Err(reason) => (
            format!(
                "INVALID: {}",
                reason.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            json!({"ok": false, "reason": reason}),
        ),
    };
    out!("{first}");
    if as_json {
        out!("{details}");
    } else if let Some(summary) = details.get("summary").and_then(Value::as_str) {
        out!("{summary}");
    }
    if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The checks of `attest verify`: `Ok(details)` or `Err(which, why)`.
fn check_export(doc: &Value, header: Option<&(u64, String, [u8; 32])>) -> Result<Value, String> {
    let items = export_items(doc)?;
    if items.is_empty() {
        return Err("the file holds no attestations".into());
    }
    let mut list = Vec::with_capacity(items.len());
    for (i, h) in items.iter().enumerate() {
        let bytes = hex::decode(h.trim()).map_err(|e| format!("attestation #{i}: not hex: {e}"))?;
        let a =
            SignedAttestation::from_bytes(&bytes).map_err(|e| format!("attestation #{i}: {e}"))?;
        list.push(a);
    }
    verify_chain(&list).map_err(|e| e.to_string())?;
    let first = &list[0];
    let last = &list[list.len() - 1];
    let mut anchored = 0usize;
    if let Some((height, chain_id, hash)) = header {
        for (i, a) in list.iter().enumerate() {
            if a.attestation.anchor_height == *height {
                check_anchor(&a.attestation, *height, *hash, chain_id).map_err(|e| {
                    format!("attestation #{i} (seq {}): {e}", a.attestation.segment_seq)
                })?;
                anchored += 1;
            }
        }
        if anchored == 0 {
            let lo = list.iter().map(|a| a.attestation.anchor_height).min();
            let hi = list.iter().map(|a| a.attestation.anchor_height).max();
            return Err(format!(
                "no attestation is anchored at the header's height {height} (their anchors are \
                 heights {}..={}), so the header vouches for none",
                lo.unwrap_or(0),
                hi.unwrap_or(0)
            ));
        }
    }
    let summary = format!(
        "{} attestation(s), seq {}..={}, stream {}, chain {}, node {}: signatures and hash links \
         check out{}",
        list.len(),
        first.attestation.segment_seq,
        last.attestation.segment_seq,
        first.attestation.stream_id,
        first.attestation.chain_id,
        first.node_id(),
        match header {
            Some((h, _, hash)) => format!(
                "; {anchored} anchored at height {h} match header {}",
                hex::encode_upper(hash)
            ),
            None => String::new(),
        }
    );
    Ok(json!({
        "ok": true,
        "count": list.len(),
        "first_seq": first.attestation.segment_seq,
        "last_seq": last.attestation.segment_seq,
        "node_id": first.node_id(),
        "stream_id": first.attestation.stream_id,
        "chain_id": first.attestation.chain_id,
        "anchors_checked": anchored,
        "header_height": header.map(|h| h.0),
        "summary": summary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_compact::{KeyPair, Seed};
    use sutantra_core::attest::{AttestationChain, Segment};

    fn export(n: u64) -> Vec<String> {
        let key = KeyPair::from_seed(Seed::new([3; 32]));
        let mut chain = AttestationChain::new("c", "camera0", 0, [0; 32]).expect("chain");
        let seg = Segment {
            first_rtp_ts: 1,
            last_rtp_ts: 2,
            first_capture_us: 3,
            last_capture_us: 4,
            frame_count: 5,
            byte_count: 6,
            merkle_root: [7; 32],
        };
        (0..n)
            .map(|i| hex::encode(chain.attest(&seg, 10 + i, [i as u8; 32], &key).to_bytes()))
            .collect()
    }

    #[test]
    fn export_checks_links_and_anchors() {
        let items = export(3);
        let doc = json!(items);
        let ok = check_export(&doc, None).expect("valid");
        assert_eq!(ok["count"], 3);
        // The anchor of seq 1 is height 11, hash [1; 32].
        let good = (11, "c".to_string(), [1u8; 32]);
        assert_eq!(
            check_export(&doc, Some(&good)).expect("anchored")["anchors_checked"],
            1
        );
        let wrong_hash = (11, "c".to_string(), [9u8; 32]);
        assert!(check_export(&doc, Some(&wrong_hash)).is_err());
        let wrong_chain = (11, "d".to_string(), [1u8; 32]);
        assert!(check_export(&doc, Some(&wrong_chain)).is_err());
        let elsewhere = (99, "c".to_string(), [1u8; 32]);
        assert!(check_export(&doc, Some(&elsewhere)).is_err());
        // A gap, a swapped order, an empty file, garbage.
        assert!(check_export(&json!([items[0], items[2]]), None).is_err());
        assert!(check_export(&json!([items[1], items[0]]), None).is_err());
        assert!(check_export(&json!([]), None).is_err());
        assert!(check_export(&json!(["zz"]), None).is_err());
        assert!(check_export(&json!({"a": 1}), None).is_err());
    }

    #[test]
    fn header_files_of_every_shape_give_the_same_hash() {
        let commit: Value = serde_json::from_slice(&crate::validator::chain::rpc::tests::recorded(
            "commit_at_height_10.json",
        ))
        .expect("json");
        let want = "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE";
        for v in [
            commit.clone(),
            commit["result"].clone(),
            commit["result"]["signed_header"].clone(),
            commit["result"]["signed_header"]["header"].clone(),
        ] {
            let (h, chain, hash) = header_from(&v).expect("header");
            assert_eq!((h, chain.as_str()), (10, "dockerchain"));
            assert_eq!(hex::encode_upper(hash), want);
        }
        assert!(header_from(&json!({"x": 1})).is_err());
    }

    #[test]
    fn microsecond_times() {
        assert_eq!(rfc3339_us(1_000_000_123_456), "1970-01-12T13:46:40.123456Z");
    }
}
