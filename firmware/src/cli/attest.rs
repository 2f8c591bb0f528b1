//! `sutantra attest list|show|export|verify`: the attestation outbox and exported chains of
//! attestations, checked offline.
//!
//! `attest export FILE` writes a new file only: it refuses a FILE that exists (`create_new`,
//! which also refuses a symbolic link there) and a FILE in the node's data directory or below
//! it (its parent compared canonicalized), where the node keeps its key and store. The file is
//! mode `0644` (less the umask): an export is public, signed data made to be handed to others
//! (`attest verify` on another machine); it holds no secret, since the signatures and the
//! node's public key are what a verifier needs.
//!
//! Text printed for a person (`list`, `show`) escapes control characters: a rejection's `log`
//! comes from the RPC server.

// Reads files an operator hands it (exports, light blocks, keys): no indexing, slicing or
// arithmetic that can panic (ARCHITECTURE.md, "A fault stays where it happened"); its parsers are
// fuzzed by `fuzz/fuzz_targets/attest_export.rs` and `light_block.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use crate::ops::control::logging::escape_controls;
use crate::validator::chain::rfc3339;
use crate::validator::chain::sync::signed_header_hash;
use crate::validator::store::{OutboxEntry, OutboxStatus};
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use sutantra_chain::attest::{SignedAttestation, check_anchor, verify_chain};
use sutantra_chain::light::{Sha256Provider, SignedHeader, tendermint};

use super::chain::{DataDir, fail, open_for_reading, read_file, usage};

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
            put(&mut v, "tx_hash", json!(tx_hash));
            put(&mut v, "tx_height", json!(height));
        }
        OutboxStatus::Rejected { code, log } => {
            put(&mut v, "code", json!(code));
            put(&mut v, "log", json!(log));
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
                "first_rtp_ts": a.segment.first_rtp_ts,
                "last_rtp_ts": a.segment.last_rtp_ts,
                "first_capture_us": a.segment.first_capture_us,
                "last_capture_us": a.segment.last_capture_us,
                "first_capture": rfc3339_us(a.segment.first_capture_us),
                "last_capture": rfc3339_us(a.segment.last_capture_us),
                "frame_count": a.segment.frame_count,
                "byte_count": a.segment.byte_count,
                "merkle_root": hex::encode(a.segment.merkle_root),
                "prev_hash": hex::encode(a.prev_hash),
                "node_id": s.node_id(),
                "public_key": hex::encode(s.public_key),
                "hash": hex::encode(s.hash()),
            });
            if let (Value::Object(dst), Value::Object(src)) = (&mut v, fields) {
                dst.extend(src);
            }
            if full {
                put(&mut v, "signature", json!(hex::encode(s.signature)));
            }
        }
        Err(err) => put(
            &mut v,
            "error",
            json!(format!("the stored bytes do not decode: {err}")),
        ),
    }
    if full {
        put(&mut v, "signed_bytes", json!(hex::encode(&e.signed)));
    }
    v
}

/// Sets `key` in the JSON object `v` (`v[key] = value` without the panic `IndexMut` has for a
/// value that is not an object; `v` is always one here).
fn put(v: &mut Value, key: &str, value: Value) {
    if let Value::Object(m) = v {
        m.insert(key.into(), value);
    }
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
        let field = |k: &str| match v.get(k).unwrap_or(&Value::Null) {
            Value::Null => "?".to_string(),
            Value::String(s) => escape_controls(s).into_owned(),
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
                Value::String(s) => escape_controls(s).into_owned(),
                other => other.to_string(),
            };
            out!("{k:<17} {text}");
        }
    }
    ExitCode::SUCCESS
}

fn attest_export(data_dir: &Path, file: &Path, from: Option<u64>, to: Option<u64>) -> ExitCode {
    let to_stdout = file == Path::new("-");
    if !to_stdout && let Err(e) = export_target(data_dir, file) {
        return fail(e);
    }
    let list = match entries(data_dir, from.unwrap_or(0), to.unwrap_or(u64::MAX)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let arr: Vec<String> = list.iter().map(|e| hex::encode(&e.signed)).collect();
    let text = match serde_json::to_string_pretty(&arr) {
        Ok(t) => t + "\n",
        Err(e) => return fail(e),
    };
    if to_stdout {
        out!("{}", text.trim_end());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = write_new(file, &text) {
        return fail(e);
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

/// Checks where an export may go: not over an existing file, not into `data_dir` (or below it).
fn export_target(data_dir: &Path, file: &Path) -> Result<(), String> {
    if file.symlink_metadata().is_ok() {
        return Err(format!(
            "{} exists: `attest export` does not overwrite files; give a new file name",
            file.display()
        ));
    }
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent)
        .map_err(|e| format!("cannot write {}: {}: {e}", file.display(), parent.display()))?;
    // A data dir that does not exist holds nothing to protect (and nothing can be below it).
    if let Ok(data) = std::fs::canonicalize(data_dir)
        && parent.starts_with(&data)
    {
        return Err(format!(
            "{} is in the node's data directory {}: the node keeps its key and store there; \
             export to a file outside it",
            file.display(),
            data.display()
        ));
    }
    Ok(())
}

/// Writes `text` to a new file `file` (mode 0644 less the umask); never replaces a file.
fn write_new(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} exists: `attest export` does not overwrite files; give a new file name",
                file.display()
            ),
            _ => format!("cannot write {}: {e}", file.display()),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            // Do not leave half an export behind: it would read as a short chain.
            let _ = std::fs::remove_file(file);
            format!("cannot write {}: {e}", file.display())
        })
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
    // Base64 the `tendermint` types' decoder would panic on is refused before they see it.
    sutantra_chain::light::parse::check_base64_fields(v)?;
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

/// `attest verify` on the bytes of an export file and, optionally, of a `--header` file: the
/// JSON parsing and the checks of [`attest_verify`] without the files and the printing. The
/// entry point of the fuzz target `attest_export` (crate `sutantra-fuzz`).
#[doc(hidden)]
pub fn verify_export(export: &[u8], header: Option<&[u8]>) -> Result<Value, String> {
    let doc: Value = serde_json::from_slice(export).map_err(|e| format!("not JSON: {e}"))?;
    let header = match header {
        None => None,
        Some(b) => {
            let v: Value =
                serde_json::from_slice(b).map_err(|e| format!("--header: not JSON: {e}"))?;
            Some(header_from(&v).map_err(|e| format!("--header: {e}"))?)
        }
    };
    check_export(&doc, header.as_ref())
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
    let (Some(first), Some(last)) = (list.first(), list.last()) else {
        return Err("the file holds no attestations".into());
    };
    let mut anchored = 0usize;
    if let Some((height, chain_id, hash)) = header {
        for (i, a) in list.iter().enumerate() {
            if a.attestation.anchor_height == *height {
                check_anchor(&a.attestation, *height, *hash, chain_id).map_err(|e| {
                    format!("attestation #{i} (seq {}): {e}", a.attestation.segment_seq)
                })?;
                anchored = anchored.saturating_add(1);
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
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use ed25519_compact::{KeyPair, Seed};
    use sutantra_chain::attest::{AttestationChain, Segment};

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

    /// Found by the fuzz target `attest_export` (fuzz/artifacts/attest_export/): a `--header`
    /// file whose commit signature is not canonical base64 made the `tendermint` types' base64
    /// decoder panic (subtract with overflow). Now a plain error.
    #[test]
    fn a_header_with_broken_base64_is_an_error_not_a_panic() {
        let header = include_str!(
            "../../../tests/data/cometbft/kvstore_v0_38/incoming/commit_at_height_10.json"
        );
        let v: Value = serde_json::from_str(header).expect("vector");
        assert!(header_from(&v).is_ok());
        let sig = v["result"]["signed_header"]["commit"]["signatures"][0]["signature"]
            .as_str()
            .expect("a signature");
        let broken = header.replace(sig, &format!("={}", &sig[1..]));
        let doc = serde_json::to_vec(&export(1)).expect("json");
        assert!(verify_export(&doc, Some(broken.as_bytes())).is_err());
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
    fn export_writes_new_files_outside_the_data_dir_only() {
        use std::os::unix::fs::PermissionsExt;
        let data = tempfile::tempdir().expect("data dir");
        let elsewhere = tempfile::tempdir().expect("another dir");
        // No store yet: an empty export, written once.
        let file = elsewhere.path().join("export.json");
        assert_eq!(
            attest_export(data.path(), &file, None, None),
            ExitCode::SUCCESS
        );
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "[]\n");
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert_eq!(mode & 0o133, 0, "{mode:o}");
        // Not over an existing file (nor through a link), which stays as it was.
        std::fs::write(&file, "mine").expect("write");
        let e = export_target(data.path(), &file).expect_err("exists");
        assert!(
            e.contains("exists") && e.contains("does not overwrite"),
            "{e}"
        );
        assert_eq!(
            attest_export(data.path(), &file, None, None),
            ExitCode::from(1)
        );
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "mine");
        let e = write_new(&file, "x").expect_err("exists");
        assert!(e.contains("does not overwrite"), "{e}");
        let link = elsewhere.path().join("link.json");
        std::os::unix::fs::symlink(elsewhere.path().join("nowhere"), &link).expect("symlink");
        assert!(export_target(data.path(), &link).is_err());
        // Not into the data dir, however it is spelled, nor below it.
        std::fs::create_dir(data.path().join("sub")).expect("mkdir");
        for inside in [
            data.path().join("out.json"),
            data.path().join("sub/out.json"),
            data.path().join("sub/../out.json"),
        ] {
            let e = export_target(data.path(), &inside).expect_err("data dir");
            assert!(e.contains("the node's data directory"), "{e}");
            assert_eq!(
                attest_export(data.path(), &inside, None, None),
                ExitCode::from(1)
            );
            assert!(!inside.exists(), "{}", inside.display());
        }
        let alias = elsewhere.path().join("alias");
        std::os::unix::fs::symlink(data.path(), &alias).expect("symlink");
        assert!(export_target(data.path(), &alias.join("out.json")).is_err());
        // A missing directory is said plainly.
        let e = export_target(data.path(), &elsewhere.path().join("no/such/dir/x.json"))
            .expect_err("no dir");
        assert!(e.starts_with("cannot write"), "{e}");
    }

    #[test]
    fn microsecond_times() {
        assert_eq!(rfc3339_us(1_000_000_123_456), "1970-01-12T13:46:40.123456Z");
    }
}
