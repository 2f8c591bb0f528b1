//! The attestation outbox in the store: signed attestations committed with the attestation
//! chain's head in one durable transaction, bounded, and their way to the chain (pending,
//! submitted, rejected).
//!
//! The bound (`attest.outbox_capacity`) is kept the way a user expects: when the outbox is full,
//! the oldest *settled* entries (submitted or rejected: the chain has had its say) are pruned
//! first, counted in meta as pruned; only an outbox full of unsubmitted entries drops its oldest
//! unsubmitted one, which is lost, so it is counted in meta as dropped
//! (`sutantra_attest_outbox_dropped_total`), returned to the caller (who logs it as an error)
//! and shown by `sutantra chain status`. Nothing unsubmitted goes silently.

use super::{
    K_DROPPED, K_NEXT_SEQ, K_PREV_HASH, K_PRUNED, META, OUTBOX, PENDING, Store, StoreError, u64_of,
};
use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

/// Where an attestation is on its way to the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Not yet accepted by an RPC node.
    Pending,
    /// `broadcast_tx_sync` answered code 0.
    Submitted {
        /// The transaction hash (hex) the node answered.
        tx_hash: String,
        /// The block it landed in, when known.
        height: Option<u64>,
    },
    /// `broadcast_tx_sync` answered a non-zero code: kept, not retried.
    Rejected {
        /// The ABCI code.
        code: u32,
        /// The node's log line.
        log: String,
    },
}

impl OutboxStatus {
    /// `pending`, `submitted` or `rejected`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Submitted { .. } => "submitted",
            Self::Rejected { .. } => "rejected",
        }
    }
}

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Attestation sequence number.
    pub seq: u64,
    /// The signed attestation bytes (what is sent as the transaction).
    pub signed: Vec<u8>,
    /// Where it is.
    pub status: OutboxStatus,
    /// Submission attempts so far.
    pub attempts: u32,
    /// The last transport error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When it was stored (UNIX seconds).
    pub stored_unix: u64,
}

/// The stored form of an entry (JSON; the attestation bytes as hex).
#[derive(Serialize, Deserialize)]
struct Record {
    signed: String,
    status: OutboxStatus,
    attempts: u32,
    last_error: Option<String>,
    stored_unix: u64,
}

/// What [`Store::append_attestation`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    /// Seqs of older *unsubmitted* entries dropped to make room (lost: only when every entry
    /// was pending).
    pub dropped: Vec<u64>,
    /// Seqs of older submitted or rejected entries pruned to make room (no loss).
    pub pruned: Vec<u64>,
    /// Entries still pending after the insert.
    pub pending: u64,
}

impl Store {
    /// Commits a signed attestation and advances the attestation chain (`next_seq = seq + 1`,
    /// `prev_hash = hash`) in ONE durable transaction. When the outbox holds `capacity` entries,
    /// room is made first: the oldest submitted or rejected entries are pruned, and only if every
    /// entry is still pending, the oldest pending one is dropped (both counted in meta; see the
    /// module header). Returns only after the fsync.
    pub fn append_attestation(
        &self,
        seq: u64,
        hash: [u8; 32],
        signed: &[u8],
        capacity: usize,
        now_unix: u64,
    ) -> Result<Appended, StoreError> {
        let record = serde_json::to_vec(&Record {
            signed: hex::encode(signed),
            status: OutboxStatus::Pending,
            attempts: 0,
            last_error: None,
            stored_unix: now_unix,
        })
        .map_err(|e| self.corrupt(e.to_string()))?;
        let expected = self.meta()?.next_seq;
        if seq != expected {
            return Err(StoreError::OutOfSequence { expected, got: seq });
        }
        self.transact(|txn| {
            let mut out = txn.open_table(OUTBOX).map_err(|e| self.err(e))?;
            let mut pending = txn.open_table(PENDING).map_err(|e| self.err(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            // Re-check inside the transaction: only one writer runs at a time.
            let next = meta
                .get(K_NEXT_SEQ)
                .map_err(|e| self.err(e))?
                .and_then(|v| u64_of(v.value()))
                .unwrap_or(0);
            if next != seq {
                return Err(StoreError::OutOfSequence {
                    expected: next,
                    got: seq,
                });
            }
            let mut appended = Appended::default();
            while out.len().map_err(|e| self.err(e))? >= capacity.max(1) as u64 {
                // The oldest settled entry, if any: pending entries are nearly always the newest
                // (the submitter sends the oldest first), so this walk is short; when every
                // entry is pending it is skipped.
                let all_pending = pending.len().map_err(|e| self.err(e))?
                    >= out.len().map_err(|e| self.err(e))?;
                let mut settled = None;
                if !all_pending {
                    for item in out.iter().map_err(|e| self.err(e))? {
                        let k = item.map_err(|e| self.err(e))?.0.value();
                        if pending.get(k).map_err(|e| self.err(e))?.is_none() {
                            settled = Some(k);
                            break;
                        }
                    }
                }
                match settled {
                    Some(k) => {
                        out.remove(k).map_err(|e| self.err(e))?;
                        appended.pruned.push(k);
                    }
                    None => {
                        let Some(old) = out
                            .pop_first()
                            .map_err(|e| self.err(e))?
                            .map(|(k, _)| k.value())
                        else {
                            break;
                        };
                        pending.remove(old).map_err(|e| self.err(e))?;
                        appended.dropped.push(old);
                    }
                }
            }
            out.insert(seq, record.as_slice())
                .map_err(|e| self.err(e))?;
            pending.insert(seq, ()).map_err(|e| self.err(e))?;
            meta.insert(K_NEXT_SEQ, (seq + 1).to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            meta.insert(K_PREV_HASH, hash.as_slice())
                .map_err(|e| self.err(e))?;
            for (key, n) in [
                (K_DROPPED, appended.dropped.len()),
                (K_PRUNED, appended.pruned.len()),
            ] {
                if n == 0 {
                    continue;
                }
                let total = meta
                    .get(key)
                    .map_err(|e| self.err(e))?
                    .and_then(|v| u64_of(v.value()))
                    .unwrap_or(0)
                    + n as u64;
                meta.insert(key, total.to_le_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
            }
            appended.pending = pending.len().map_err(|e| self.err(e))?;
            Ok(appended)
        })
    }

    fn decode(&self, seq: u64, bytes: &[u8]) -> Result<OutboxEntry, StoreError> {
        let r: Record = serde_json::from_slice(bytes)
            .map_err(|_| self.corrupt(format!("outbox entry {seq}")))?;
        Ok(OutboxEntry {
            seq,
            signed: hex::decode(&r.signed)
                .map_err(|_| self.corrupt(format!("outbox entry {seq}")))?,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            stored_unix: r.stored_unix,
        })
    }

    /// Outbox entries with `from <= seq <= to`, oldest first.
    pub fn outbox(&self, from: u64, to: u64) -> Result<Vec<OutboxEntry>, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, OUTBOX)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            if from > to {
                return Ok(out);
            }
            for item in t.range(from..=to).map_err(|e| self.err(e))? {
                let (k, v) = item.map_err(|e| self.err(e))?;
                out.push(self.decode(k.value(), v.value())?);
            }
            Ok(out)
        })
    }

    /// One outbox entry.
    pub fn outbox_entry(&self, seq: u64) -> Result<Option<OutboxEntry>, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, OUTBOX)? else {
                return Ok(None);
            };
            match t.get(seq).map_err(|e| self.err(e))? {
                None => Ok(None),
                Some(v) => self.decode(seq, v.value()).map(Some),
            }
        })
    }

    /// The oldest pending entry.
    pub fn oldest_pending(&self) -> Result<Option<OutboxEntry>, StoreError> {
        self.guarded(|| {
            let seq = {
                let txn = self.read()?;
                let Some(t) = self.table(&txn, PENDING)? else {
                    return Ok(None);
                };
                match t.first().map_err(|e| self.err(e))? {
                    None => return Ok(None),
                    Some((k, _)) => k.value(),
                }
            };
            self.outbox_entry(seq)
        })
    }

    /// Entries waiting for submission.
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, PENDING)? else {
                return Ok(0);
            };
            t.len().map_err(|e| self.err(e))
        })
    }

    /// Entries in the outbox.
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, OUTBOX)? else {
                return Ok(0);
            };
            t.len().map_err(|e| self.err(e))
        })
    }

    /// Sets the status of entry `seq` (leaving pending when it is no longer pending) and, for a
    /// failed attempt, counts it with its error. An entry dropped meanwhile is not an error.
    pub fn update_entry(
        &self,
        seq: u64,
        status: OutboxStatus,
        failed_attempt: Option<&str>,
    ) -> Result<(), StoreError> {
        self.transact(|txn| {
            let mut out = txn.open_table(OUTBOX).map_err(|e| self.err(e))?;
            let current = match out.get(seq).map_err(|e| self.err(e))? {
                None => return Ok(()),
                Some(v) => v.value().to_vec(),
            };
            let mut r: Record = serde_json::from_slice(&current)
                .map_err(|_| self.corrupt(format!("outbox entry {seq}")))?;
            r.attempts = r.attempts.saturating_add(1);
            r.last_error = failed_attempt.map(|e| e.chars().take(300).collect());
            let still_pending = status == OutboxStatus::Pending;
            r.status = status;
            let bytes = serde_json::to_vec(&r).map_err(|e| self.corrupt(e.to_string()))?;
            out.insert(seq, bytes.as_slice()).map_err(|e| self.err(e))?;
            if !still_pending {
                let mut p = txn.open_table(PENDING).map_err(|e| self.err(e))?;
                p.remove(seq).map_err(|e| self.err(e))?;
            }
            Ok(())
        })
    }
}
