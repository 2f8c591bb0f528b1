//! The light validator's commands: `sutantra chain ...`, `sutantra keys show`,
//! `sutantra attest ...`.
//!
//! `chain verify` is a contract (ARCHITECTURE.md): the first line printed is exactly `SUCCESS`,
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
use crate::validator::store::Store;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use sutantra_chain::light::{
    ChainError, ParseLimits, VerifyOptions, header_hash, parse_light_block, parse_light_block_with,
    parse_time, parse_trusted, verify_step,
};

/// Largest file a command reads (light blocks hold at most 10 000 validators).
pub(super) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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

/// `sutantra chain verify` arguments (a contract in ARCHITECTURE.md).
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

pub(super) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sutantra: {msg}");
    ExitCode::from(1)
}

pub(super) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sutantra: {msg}");
    ExitCode::from(2)
}

/// Reads a file of at most [`MAX_FILE_BYTES`].
pub(super) fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
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
        sutantra_chain::light::Verdict::Success => ("SUCCESS", None),
        sutantra_chain::light::Verdict::NotEnoughTrust(r) => ("NOT_ENOUGH_TRUST", Some(r.clone())),
        sutantra_chain::light::Verdict::Invalid(r) => ("INVALID", Some(r.clone())),
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

pub(super) fn open_for_reading(data_dir: &Path) -> Result<Option<Store>, ExitCode> {
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
    let status = match status_json(&store, data_dir) {
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
    out!("store size:     {} bytes", s("store_bytes"));
    if status["node_running"] == Value::Bool(true) {
        // The store holds the trusted state as last written: the running node verifies every
        // height in memory and writes on a budget (chain.persist_interval_s).
        out!(
            "                the node is running: it verifies newer heights in memory and \
             stores the newest at most every chain.persist_interval_s (default 60 s); its live \
             height is in `sutantra status`"
        );
    }
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
        "attestations:   next seq {}, outbox {} ({} pending), {} dropped unsubmitted, {} \
         pruned after submission",
        o["next_seq"],
        o["entries"],
        o["pending"],
        o["dropped"],
        o["pruned"]
    );
    ExitCode::SUCCESS
}

fn status_json(store: &Store, data_dir: &Path) -> Result<Value, String> {
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
        "store_bytes": store.file_bytes().map_err(|e| e.to_string())?,
        "node_running": crate::validator::store::node_running(data_dir),
        "halted": halted.is_some(),
        "halt_reason": halted.map(|h| h.reason.clone()),
        "halted_since": halted.map(|h| rfc3339(h.since_unix)),
        "outbox": {
            "next_seq": meta.next_seq,
            "entries": store.outbox_len().map_err(|e| e.to_string())?,
            "pending": store.pending_count().map_err(|e| e.to_string())?,
            "dropped": meta.outbox_dropped,
            "pruned": meta.outbox_pruned,
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

// ---- attest ----
