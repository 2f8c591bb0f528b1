//! The node's durable state in `<data_dir>/node.redb`: trusted light blocks, chain metadata and
//! the attestation outbox.
//!
//! Why `redb` (4.x, the latest major): it is embedded (one file, no server, pure Rust, so it
//! cross-compiles for every board), ACID, and crash-safe by default: a commit with
//! `Durability::Immediate` (the default, and the only one used here) has been fsync'd when
//! `commit()` returns, and its copy-on-write B-trees never leave a half-written state behind, so
//! nothing this module reports as stored is lost on `kill -9` or a power cut. Its
//! `SingleWriter` concurrency mode lets the CLI open the file read-only beside the running node
//! (byte-range locks), so `sutantra attest list` and `chain status` work live; anything that
//! writes (`chain resume`) needs the node stopped.
//!
//! Tables:
//! - `trusted_light_blocks`: height → light block JSON (`signed_header`, `validator_set`,
//!   `next_validator_set`, CometBFT RPC encoding); only the newest `chain.headers_kept` stay.
//!   The chain thread writes here on a budget (at most once per `chain.persist_interval_s`,
//!   see `validator::chain::persist`), not at every verified height: an SD card lasts.
//! - `meta`: chain id, trust root, next attestation seq, previous attestation hash, halted flag
//!   and reason, outbox drops (unsubmitted, lost) and prunes (settled), the stored block's
//!   verification time.
//! - `outbox`: seq → entry (signed attestation bytes, status, attempts); bounded: settled
//!   entries are pruned first, unsubmitted ones dropped only from an outbox full of them
//!   (counted in `meta`; see the `outbox` module).
//! - `outbox_pending`: the seqs still to submit, so the submitter finds the oldest in O(log n).
//!
//! The file's size is bounded by those bounds; redb reuses freed pages and gives a free tail
//! back when it closes, but never the free pages in the file's middle, so
//! [`Store::compact_if_sparse`] compacts it when the node opens it and more than three quarters
//! of a file of some size are free (after a re-root, or a smaller `headers_kept` or
//! `outbox_capacity`).
//!
//! A full or failing disk: after any failed write, sync or resize (ENOSPC, EIO), redb latches
//! the failure and every later operation on that `Database` fails (`PreviousIo`) until it is
//! dropped and opened again. So the node's writable store holds its database behind a lock and,
//! once an operation failed with such an error, drops the handle and reopens the file (with the
//! same builder and the same `init`) before the next operation, at most once per
//! [`REOPEN_EVERY`]; a reopen that fails too (the repair on open needs to write) is tried again
//! by a later operation. Every thread that uses the store retries on its own schedule (the
//! attester per segment, the submitter every second, the chain thread per poll), so nothing
//! loops. Failed operations are counted (`sutantra_store_errors_total`), the first error of an
//! outage is logged and shown as the light validator's error until a write succeeds again after
//! [`STABLE_AFTER`] without a failure.

use crate::stats::{ChainStats, Stats};
use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// The store file's name inside the data directory.
mod outbox;

pub use outbox::{Appended, OutboxEntry, OutboxStatus};

pub const STORE_FILE: &str = "node.redb";
/// The file where a running node writes its pid (for the "node is running" message).
pub const PID_FILE: &str = "node.pid";

const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("trusted_light_blocks");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const OUTBOX: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("outbox");
const PENDING: TableDefinition<'_, u64, ()> = TableDefinition::new("outbox_pending");

const K_SCHEMA: &str = "schema";
const K_CHAIN_ID: &str = "chain_id";
const K_TRUST_ROOT: &str = "trust_root";
const K_NEXT_SEQ: &str = "next_seq";
const K_PREV_HASH: &str = "prev_hash";
const K_HALTED: &str = "halted";
const K_DROPPED: &str = "outbox_dropped";
const K_PRUNED: &str = "outbox_pruned";
const K_LAST_VERIFIED: &str = "last_verified_unix";
const SCHEMA: u64 = 1;

/// After an I/O error latched the database, reopens are tried at most this often.
pub const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// An outage ends at the first successful write once no store operation has failed for this
/// long: on a disk that is full, small commits that fit in the file's free pages go through
/// between failing ones, and the status and the log must not flap every second.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// The store file is compacted at open only from this size on (and only when more than three
/// quarters are free): below it, compaction would cost more writes than it saves.
pub const COMPACT_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// What [`Store::compact_if_sparse`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// File size before, bytes.
    pub before: u64,
    /// File size after, bytes.
    pub after: u64,
    /// Bytes in use (keys, values, tree metadata).
    pub used: u64,
    /// Whether it compacted.
    pub compacted: bool,
}

/// Why the store could not be used. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (the node) holds the store for writing.
    #[error(
        "the store {path} is in use: the node is running{pid} — stop it first; live queries come \
         with the control socket"
    )]
    Running {
        /// The store file.
        path: String,
        /// ` (pid N)` when known.
        pid: String,
    },
    /// The store belongs to another chain.
    #[error(
        "the store {path} belongs to chain `{stored}`, not `{configured}`: use another --data-dir \
         or move {path} away"
    )]
    OtherChain {
        /// The store file.
        path: String,
        /// The chain id in the store.
        stored: String,
        /// The configured chain id.
        configured: String,
    },
    /// An attestation arrived out of sequence.
    #[error("attestation seq {got} does not follow the stored chain (next is {expected})")]
    OutOfSequence {
        /// What the store expected.
        expected: u64,
        /// What was offered.
        got: u64,
    },
    /// A record in the file is not what this version wrote.
    #[error("the store {path} holds a damaged record ({what}); back it up and move it away")]
    Corrupt {
        /// The store file.
        path: String,
        /// Which record.
        what: String,
    },
    /// The database itself failed.
    #[error("store {path}: {reason}")]
    Db {
        /// The store file.
        path: String,
        /// redb's error.
        reason: String,
    },
}

/// Why attestations are stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halted {
    /// What happened (both hashes and URLs of the conflict).
    pub reason: String,
    /// When (UNIX seconds).
    pub since_unix: u64,
}

/// The chain metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Chain id (empty before the first start with a chain).
    pub chain_id: String,
    /// `height:HEXHASH` of the trust root the trusted state grew from.
    pub trust_root: String,
    /// Sequence number of the next attestation.
    pub next_seq: u64,
    /// Hash of the last attestation (zero before the first).
    pub prev_hash: [u8; 32],
    /// Set after a witness conflict, until an operator runs `sutantra chain resume`.
    pub halted: Option<Halted>,
    /// Unsubmitted outbox entries dropped because the outbox was full of them (lost).
    pub outbox_dropped: u64,
    /// Submitted or rejected outbox entries pruned to make room (no loss).
    pub outbox_pruned: u64,
    /// When the newest trusted block was verified (UNIX seconds), 0 if never.
    pub last_verified_unix: u64,
}

/// How the writable database is opened (the same at the first open and at every reopen).
type Opener = Box<dyn Fn(&Path) -> Result<Database, redb::DatabaseError> + Send + Sync>;

enum Db {
    Rw(Writable),
    Ro(ReadOnlyDatabase),
}

/// The writable database and what reopening it needs. Transactions are `'static` (they hold
/// the database's internals, not a borrow), so a handle is cloned out of the lock for each
/// operation; a reopen drops the lock's handle, and if another thread's transaction still holds
/// the old one, the open fails as "already open" and a later operation tries again.
struct Writable {
    db: RwLock<Option<Arc<Database>>>,
    open: Opener,
    /// An operation failed with an error that latches redb: reopen before the next one.
    broken: AtomicBool,
    last_reopen: Mutex<Option<Instant>>,
    reopen_every: Duration,
    /// See [`STABLE_AFTER`].
    stable_after: Duration,
}

/// The open store.
pub struct Store {
    db: Db,
    path: PathBuf,
    /// Where failures are counted and shown (the node's; none for the CLI).
    stats: OnceLock<Arc<Stats>>,
    /// The current outage (`None`: healthy).
    failing: Mutex<Option<Outage>>,
}

/// Since a store operation failed, until a write succeeds again.
#[derive(Debug)]
struct Outage {
    /// The first error.
    error: String,
    since: Instant,
    /// The last failure.
    last: Instant,
    /// Failed operations.
    errors: u64,
    /// Reopens of the database.
    reopens: u64,
}

impl Drop for Store {
    /// Closing a writable redb database commits its allocator state, and on some damaged files
    /// that panics too (`bitmap.rs`: `bit < self.len`, found by the `store_open` fuzz target):
    /// the last handle is dropped through `close_contained`, which catches and logs such a panic.
    fn drop(&mut self) {
        if let Db::Rw(w) = &mut self.db {
            let db = w.db.get_mut().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(db) = db {
                // The last handle, unless a transaction of another thread still holds one.
                close_contained(&self.path, db);
            }
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("writable", &matches!(self.db, Db::Rw(_)))
            .finish()
    }
}

/// Whether redb's error means its `Database` latched the failure (or is gone) and has to be
/// dropped and opened again.
fn latches(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_)
            | redb::Error::PreviousIo
            | redb::Error::Backend(_)
            | redb::Error::DatabaseClosed
            | redb::Error::LockPoisoned(_)
    )
}

fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b
}

thread_local! {
    /// How many store operations this thread is inside (see [`contain`]).
    static CATCHING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// redb panics the store caught since the process started (see [`contain`]).
static CONTAINED_PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many panics inside redb the store caught (and turned into errors or logged) since the
/// process started.
pub fn contained_panics() -> u64 {
    CONTAINED_PANICS.load(Ordering::Relaxed)
}

/// Whether this thread is inside a store operation that turns a panic into
/// [`StoreError::Corrupt`]: a panic hook that would stop the thread (the validator's panic watch,
/// a fuzzer's) lets such a panic unwind to it instead.
pub fn catching_panics() -> bool {
    CATCHING.with(|c| c.get() > 0)
}

/// Runs `f`, a use of redb, with a panic inside it turned into [`StoreError::Corrupt`].
///
/// redb trusts its file: on some damaged `node.redb` files (a flipped bit in a B-tree page, a
/// file cut short) it reaches `unreachable!()` or an index out of bounds instead of returning an
/// error, in `Database::create` and in reads (found by the `store_open` fuzz target; its inputs
/// are `fuzz/artifacts/store_open/`). The release build unwinds on panic, so the store catches
/// it here, where it knows which file is damaged, and says what to do; every caller then handles
/// it like any other store error (the node keeps streaming, the CLI prints it and exits 1).
fn contain<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch(f).unwrap_or_else(|what| Err(panicked(path, &what)))
}

/// Runs `f` inside `catch_unwind`, marked for the panic hooks ([`catching_panics`]); `Err` is
/// the message of a panic it caught (counted in [`contained_panics`]).
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            CATCHING.with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    CATCHING.with(|c| c.set(c.get().saturating_add(1)));
    let depth = Depth;
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    drop(depth);
    out.map_err(|payload| {
        CONTAINED_PANICS.fetch_add(1, Ordering::Relaxed);
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// The error for a panic inside redb on the store at `path`.
fn panicked(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        what: format!("redb stopped on damaged data: {what}"),
    }
}

/// Drops `handle` (a writable `Database`, or a shared handle to one that may be the last) inside
/// [`catch`]: closing a writable database commits redb's allocator state, which panics on some
/// damaged files (or after an earlier panic poisoned its locks). Such a panic is logged.
fn close_contained<T>(path: &Path, handle: T) {
    if let Err(what) = catch(move || drop(handle)) {
        tracing::error!("closing the store: {}", panicked(path, &what));
    }
}

/// The pid in `<data_dir>/node.pid`, if that process is alive.
fn running_pid(data_dir: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data_dir.join(PID_FILE)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Whether a node runs on `data_dir` (its pid file names a live process).
pub fn node_running(data_dir: &Path) -> bool {
    running_pid(data_dir).is_some()
}

/// The store file path in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

impl Store {
    /// Opens (creating if needed) the store for writing: the node, or a CLI command that
    /// changes state. Another writer (a running node) gives [`StoreError::Running`]; a brief
    /// holder (another CLI command) is waited for up to `wait`.
    pub fn open(data_dir: &Path, wait: Duration) -> Result<Self, StoreError> {
        Self::open_with(
            data_dir,
            wait,
            Box::new(|path: &Path| builder().create(path)),
            REOPEN_EVERY,
            STABLE_AFTER,
        )
    }

    fn open_with(
        data_dir: &Path,
        wait: Duration,
        open: Opener,
        reopen_every: Duration,
        stable_after: Duration,
    ) -> Result<Self, StoreError> {
        let path = store_path(data_dir);
        let start = std::time::Instant::now();
        let db = loop {
            match contain(&path, || Ok(open(&path)))? {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(StoreError::Running {
                        path: path.display().to_string(),
                        pid: running_pid(data_dir)
                            .map(|p| format!(" (pid {p})"))
                            .unwrap_or_default(),
                    });
                }
                Err(e) => {
                    return Err(StoreError::Db {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        };
        let store = Self {
            db: Db::Rw(Writable {
                db: RwLock::new(None),
                open,
                broken: AtomicBool::new(false),
                last_reopen: Mutex::new(None),
                reopen_every,
                stable_after,
            }),
            path,
            stats: OnceLock::new(),
            failing: Mutex::new(None),
        };
        if let Err(e) = store.guarded(|| store.init(&db)) {
            close_contained(&store.path, db);
            return Err(e);
        }
        if let Db::Rw(w) = &store.db {
            *w.db.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
        }
        Ok(store)
    }

    /// Counts this store's failures in `stats` and shows an outage as the chain's error (the
    /// node's store; set once, before it is shared).
    pub fn report_to(&self, stats: Arc<Stats>) {
        let _ = self.stats.set(stats);
    }

    /// Whether the store fails now (an error since the last successful write).
    pub fn failing(&self) -> Option<String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|o| o.error.clone())
    }

    /// Opens an existing store for reading: read-only beside a running node; when no node holds
    /// it and it needs the recovery a crash leaves behind (a read-only handle cannot repair),
    /// opened for writing just long enough to read (the repair keeps every committed
    /// transaction). `None` when there is no store yet.
    pub fn open_read_only(data_dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = store_path(data_dir);
        if !path.exists() {
            return Ok(None);
        }
        let opened = contain(&path, || Ok(builder().open_read_only(&path)))?;
        match opened {
            Ok(db) => Ok(Some(Self {
                db: Db::Ro(db),
                path,
                stats: OnceLock::new(),
                failing: Mutex::new(None),
            })),
            Err(redb::DatabaseError::RepairAborted) => {
                // Nobody has it open for writing (a writer would have repaired it): a node
                // that was killed. A node starting right now waits for this brief hold.
                Self::open(data_dir, Duration::from_secs(2)).map(Some)
            }
            // An older node holding the whole file, or a platform without range locks.
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(StoreError::Running {
                path: path.display().to_string(),
                pid: running_pid(data_dir)
                    .map(|p| format!(" (pid {p})"))
                    .unwrap_or_default(),
            }),
            Err(e) => Err(StoreError::Db {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn file_bytes(&self) -> Result<u64, StoreError> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Db {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Bytes the stored keys, values and their tree metadata take (the rest of the file is free
    /// or fragmented). Needs the store open for writing (redb reports it in a write transaction,
    /// which this aborts: nothing is written).
    pub fn used_bytes(&self) -> Result<u64, StoreError> {
        self.guarded(|| {
            let txn = self.write()?;
            let stats = txn.stats().map_err(|e| self.err(e))?;
            txn.abort().map_err(|e| self.err(e))?;
            Ok(stats.stored_bytes() + stats.metadata_bytes())
        })
    }

    /// Compacts the file (redb's `compact`, which rewrites it) when it is at least
    /// [`COMPACT_MIN_BYTES`] and more than three quarters of it are free; only the node, when it
    /// opens the store, before any other transaction (`&mut`). Cheap when there is nothing to
    /// do: one `stat` and a walk of the trees' pages. (redb's copy-on-write keeps a working file
    /// about twice what it holds, and it gives a free tail back by itself when it closes; what
    /// this catches is a file left mostly free in its middle, e.g. by a re-root or smaller bounds
    /// before a crash.)
    pub fn compact_if_sparse(&mut self) -> Result<Compaction, StoreError> {
        let before = self.file_bytes()?;
        let used = self.used_bytes()?;
        let mut c = Compaction {
            before,
            after: before,
            used,
            compacted: false,
        };
        if before < COMPACT_MIN_BYTES || used.saturating_mul(4) >= before {
            return Ok(c);
        }
        let path = self.path.display().to_string();
        let path_buf = self.path.clone();
        let Db::Rw(w) = &mut self.db else {
            return Ok(c);
        };
        let slot = w.db.get_mut().unwrap_or_else(|p| p.into_inner());
        // Only the node, alone with its fresh handle: nothing else holds it.
        let Some(db) = slot.as_mut().and_then(Arc::get_mut) else {
            return Ok(c);
        };
        // Each pass moves what it can towards the start; a few are enough.
        for _ in 0..4 {
            let more = contain(&path_buf, || Ok(db.compact()))?.map_err(|e| StoreError::Db {
                path: path.clone(),
                reason: format!("compaction: {e}"),
            })?;
            if !more {
                break;
            }
        }
        c.compacted = true;
        c.after = self.file_bytes()?;
        Ok(c)
    }

    /// redb's error as a [`StoreError`]; counted, and one that latches the database marks it
    /// for a reopen before the next operation.
    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        let e = e.into();
        if latches(&e)
            && let Db::Rw(w) = &self.db
        {
            w.broken.store(true, Ordering::Release);
        }
        self.failed(e.to_string())
    }

    /// Counts a failed operation; the first of an outage is logged and shown as the error.
    fn failed(&self, reason: String) -> StoreError {
        let stats = self.stats.get();
        if let Some(s) = stats {
            ChainStats::inc(&s.chain.store_errors);
        }
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = failing.as_mut() {
            o.errors += 1;
            o.last = Instant::now();
            tracing::debug!(error = %reason, "store operation failed");
        } else {
            let shown = format!(
                "the store {} fails: {reason} (a full or failing data disk?); the video is not \
                 affected, segments are not attested until it writes again; retrying",
                self.path.display()
            );
            if stats.is_some() {
                tracing::error!("{shown}");
                if let Some(s) = stats {
                    s.chain.set_store_error(Some(shown.clone()));
                }
            }
            *failing = Some(Outage {
                error: reason.clone(),
                since: Instant::now(),
                last: Instant::now(),
                errors: 1,
                reopens: 0,
            });
        }
        StoreError::Db {
            path: self.path.display().to_string(),
            reason,
        }
    }

    /// A write succeeded: an outage ends if nothing failed for [`STABLE_AFTER`].
    fn succeeded(&self) {
        let stable_after = match &self.db {
            Db::Rw(w) => w.stable_after,
            Db::Ro(_) => Duration::ZERO,
        };
        let was = {
            let mut g = self.failing.lock().unwrap_or_else(|p| p.into_inner());
            if g.as_ref().is_some_and(|o| o.last.elapsed() < stable_after) {
                return;
            }
            g.take()
        };
        if let (Some(o), Some(s)) = (was, self.stats.get()) {
            s.chain.set_store_error(None);
            tracing::info!(
                previous_error = %o.error,
                failed_operations = o.errors,
                reopens = o.reopens,
                after_s = o.since.elapsed().as_secs(),
                "the store writes again"
            );
        }
    }

    /// The writable database, reopened first if an I/O error latched it.
    fn handle(&self, w: &Writable) -> Result<Arc<Database>, StoreError> {
        if w.broken.load(Ordering::Acquire) {
            self.reopen(w)?;
        }
        let g = w.db.read().unwrap_or_else(|p| p.into_inner());
        match g.as_ref() {
            Some(db) => Ok(db.clone()),
            None => Err(self.failed("the store is closed after an I/O error".into())),
        }
    }

    fn reopen(&self, w: &Writable) -> Result<(), StoreError> {
        let mut slot = w.db.write().unwrap_or_else(|p| p.into_inner());
        if !w.broken.load(Ordering::Acquire) {
            return Ok(()); // another thread reopened it meanwhile
        }
        {
            let mut last = w.last_reopen.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < w.reopen_every) {
                return Err(
                    self.failed("the store failed on an I/O error and is reopened shortly".into())
                );
            }
            *last = Some(Instant::now());
        }
        // Closes the latched handle (a transaction of another thread may still hold it: then the
        // open below finds the file open and a later operation tries again).
        if let Some(old) = slot.take() {
            close_contained(&self.path, old);
        }
        let db = contain(&self.path, || {
            (w.open)(&self.path)
                .map_err(|e| self.failed(format!("reopening after an I/O error: {e}")))
        })?;
        if let Err(e) = contain(&self.path, || self.init(&db)) {
            close_contained(&self.path, db);
            return Err(e);
        }
        *slot = Some(Arc::new(db));
        w.broken.store(false, Ordering::Release);
        if let Some(s) = self.stats.get() {
            ChainStats::inc(&s.chain.store_reopens);
        }
        if let Some(o) = self
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            o.reopens += 1;
        }
        tracing::debug!(path = %self.path.display(), "store reopened after an I/O error");
        Ok(())
    }

    /// [`contain`] for an operation on this store: a panic also marks a writable handle for a
    /// reopen (redb's state may be half-changed) and is counted and logged like other failures.
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        catch(f).unwrap_or_else(|what| {
            if let Db::Rw(w) = &self.db {
                w.broken.store(true, Ordering::Release);
            }
            if let Some(s) = self.stats.get() {
                ChainStats::inc(&s.chain.store_errors);
            }
            let e = panicked(&self.path, &what);
            tracing::error!("{e}");
            Err(e)
        })
    }

    fn corrupt(&self, what: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            what: what.into(),
        }
    }

    /// Opens table `def` for reading: `None` when the file has no such table (a store no
    /// write has touched yet); any other failure is an error, not an empty table (a damaged
    /// file must not read as "nothing stored").
    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        txn: &ReadTransaction,
        def: TableDefinition<'_, K, V>,
    ) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
        match txn.open_table(def) {
            Ok(t) => Ok(Some(t)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        match &self.db {
            Db::Rw(w) => self.handle(w)?.begin_read().map_err(|e| self.err(e)),
            Db::Ro(db) => db.begin_read().map_err(|e| self.err(e)),
        }
    }

    fn write(&self) -> Result<WriteTransaction, StoreError> {
        match &self.db {
            // Durability::Immediate is redb's default: commit() returns after the fsync.
            Db::Rw(w) => self.handle(w)?.begin_write().map_err(|e| self.err(e)),
            Db::Ro(_) => Err(StoreError::Db {
                path: self.path.display().to_string(),
                reason: "opened read-only".into(),
            }),
        }
    }

    /// Runs `f` in one write transaction and commits it durably.
    fn transact<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.guarded(|| {
            let txn = self.write()?;
            self.commit(txn, f)
        })?;
        // (Not the reopen's `init`: its small commit may fit where the next one does not.)
        self.succeeded();
        Ok(out)
    }

    fn commit<T>(
        &self,
        txn: WriteTransaction,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = f(&txn)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Creates the tables and checks the schema on a freshly opened `db`.
    fn init(&self, db: &Database) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(|e| self.err(e))?;
        self.commit(txn, |txn| {
            txn.open_table(HEADERS).map_err(|e| self.err(e))?;
            txn.open_table(OUTBOX).map_err(|e| self.err(e))?;
            txn.open_table(PENDING).map_err(|e| self.err(e))?;
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let schema = meta
                .get(K_SCHEMA)
                .map_err(|e| self.err(e))?
                .map(|v| u64_of(v.value()));
            match schema {
                None => {
                    meta.insert(K_SCHEMA, SCHEMA.to_le_bytes().as_slice())
                        .map_err(|e| self.err(e))?;
                }
                Some(Some(SCHEMA)) => {}
                Some(other) => {
                    return Err(self.corrupt(format!(
                        "schema {other:?}; this sutantra writes schema {SCHEMA}"
                    )));
                }
            }
            Ok(())
        })
    }

    // ---- meta ----

    /// Reads the chain metadata.
    pub fn meta(&self) -> Result<Meta, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, META)? else {
                return Ok(Meta::default());
            };
            let get = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
                Ok(t.get(k)
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value().to_vec()))
            };
            let text = |v: Option<Vec<u8>>| {
                v.and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()
            };
            let num = |k: &str| -> Result<u64, StoreError> {
                match get(k)? {
                    None => Ok(0),
                    Some(b) => u64_of(&b).ok_or_else(|| self.corrupt(format!("meta {k}"))),
                }
            };
            let prev_hash = match get(K_PREV_HASH)? {
                None => [0; 32],
                Some(b) => <[u8; 32]>::try_from(b.as_slice())
                    .map_err(|_| self.corrupt("meta prev_hash"))?,
            };
            let halted = match get(K_HALTED)? {
                None => None,
                Some(b) => {
                    Some(serde_json::from_slice(&b).map_err(|_| self.corrupt("meta halted"))?)
                }
            };
            Ok(Meta {
                chain_id: text(get(K_CHAIN_ID)?),
                trust_root: text(get(K_TRUST_ROOT)?),
                next_seq: num(K_NEXT_SEQ)?,
                prev_hash,
                halted,
                outbox_dropped: num(K_DROPPED)?,
                outbox_pruned: num(K_PRUNED)?,
                last_verified_unix: num(K_LAST_VERIFIED)?,
            })
        })
    }

    /// Binds the store to `chain_id` on first use; refuses a store of another chain. When the
    /// configured trust root differs from the one the trusted state grew from, the stored light
    /// blocks are dropped (the operator re-rooted) and `true` is returned.
    pub fn bind_chain(&self, chain_id: &str, trust_root: &str) -> Result<bool, StoreError> {
        let meta = self.meta()?;
        if !meta.chain_id.is_empty() && meta.chain_id != chain_id {
            return Err(StoreError::OtherChain {
                path: self.path.display().to_string(),
                stored: meta.chain_id,
                configured: chain_id.into(),
            });
        }
        let rerooted = meta.trust_root != trust_root;
        if meta.chain_id.is_empty() || rerooted {
            self.transact(|txn| {
                let mut t = txn.open_table(META).map_err(|e| self.err(e))?;
                t.insert(K_CHAIN_ID, chain_id.as_bytes())
                    .map_err(|e| self.err(e))?;
                t.insert(K_TRUST_ROOT, trust_root.as_bytes())
                    .map_err(|e| self.err(e))?;
                if rerooted {
                    let mut h = txn.open_table(HEADERS).map_err(|e| self.err(e))?;
                    h.retain(|_, _| false).map_err(|e| self.err(e))?;
                }
                Ok(())
            })?;
        }
        Ok(rerooted && !meta.trust_root.is_empty())
    }

    /// Sets the halted flag (a witness conflict); it persists until [`Store::clear_halted`].
    pub fn set_halted(&self, reason: &str, now_unix: u64) -> Result<(), StoreError> {
        let value = serde_json::to_vec(&Halted {
            reason: reason.into(),
            since_unix: now_unix,
        })
        .map_err(|e| self.corrupt(e.to_string()))?;
        self.transact(|txn| {
            let mut t = txn.open_table(META).map_err(|e| self.err(e))?;
            t.insert(K_HALTED, value.as_slice())
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// Clears the halted flag; returns what it was.
    pub fn clear_halted(&self) -> Result<Option<Halted>, StoreError> {
        let was = self.meta()?.halted;
        self.transact(|txn| {
            let mut t = txn.open_table(META).map_err(|e| self.err(e))?;
            t.remove(K_HALTED).map_err(|e| self.err(e))?;
            Ok(())
        })?;
        Ok(was)
    }

    // ---- trusted light blocks ----

    /// Stores a verified light block and keeps only the newest `keep`.
    pub fn put_trusted(
        &self,
        height: u64,
        light_block_json: &[u8],
        keep: usize,
        verified_unix: u64,
    ) -> Result<(), StoreError> {
        self.transact(|txn| {
            let mut h = txn.open_table(HEADERS).map_err(|e| self.err(e))?;
            h.insert(height, light_block_json)
                .map_err(|e| self.err(e))?;
            while h.len().map_err(|e| self.err(e))? > keep.max(1) as u64 {
                if h.pop_first().map_err(|e| self.err(e))?.is_none() {
                    break;
                }
            }
            drop(h);
            let mut m = txn.open_table(META).map_err(|e| self.err(e))?;
            m.insert(K_LAST_VERIFIED, verified_unix.to_le_bytes().as_slice())
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    /// The newest trusted light block: `(height, JSON)`.
    pub fn latest_trusted(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, HEADERS)? else {
                return Ok(None);
            };
            Ok(t.last()
                .map_err(|e| self.err(e))?
                .map(|(k, v)| (k.value(), v.value().to_vec())))
        })
    }

    /// The trusted light block at `height`, if kept.
    pub fn trusted_at(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, HEADERS)? else {
                return Ok(None);
            };
            Ok(t.get(height)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec()))
        })
    }

    /// Heights of the kept light blocks, oldest first.
    pub fn trusted_heights(&self) -> Result<Vec<u64>, StoreError> {
        self.guarded(|| {
            let txn = self.read()?;
            let Some(t) = self.table(&txn, HEADERS)? else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for item in t.iter().map_err(|e| self.err(e))? {
                let (k, _) = item.map_err(|e| self.err(e))?;
                out.push(k.value());
            }
            Ok(out)
        })
    }
}

fn u64_of(b: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(b).ok().map(u64::from_le_bytes)
}

/// Writes `<data_dir>/node.pid` for the running node (best effort: it only improves a message).
pub fn write_pid_file(data_dir: &Path) {
    let _ = std::fs::write(data_dir.join(PID_FILE), format!("{}\n", std::process::id()));
}

/// Removes the pid file on a clean stop.
pub fn remove_pid_file(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(PID_FILE));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn att(seq: u64) -> (Vec<u8>, [u8; 32]) {
        (vec![seq as u8; 40], [seq as u8 ^ 0xA5; 32])
    }

    #[test]
    fn outbox_is_bounded_and_drops_the_oldest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path(), Duration::ZERO).expect("open");
        for seq in 0..10 {
            let (bytes, hash) = att(seq);
            let a = s
                .append_attestation(seq, hash, &bytes, 4, 1_700_000_000 + seq)
                .expect("append");
            if seq < 4 {
                assert!(a.dropped.is_empty());
            } else {
                assert_eq!(a.dropped, vec![seq - 4]);
            }
        }
        assert_eq!(s.outbox_len().expect("len"), 4);
        assert_eq!(s.pending_count().expect("pending"), 4);
        let seqs: Vec<u64> = s
            .outbox(0, u64::MAX)
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![6, 7, 8, 9]);
        let m = s.meta().expect("meta");
        assert_eq!((m.next_seq, m.outbox_dropped), (10, 6));
        assert_eq!(m.prev_hash, att(9).1);
        // Out of sequence is refused and changes nothing.
        let e = s
            .append_attestation(12, [0; 32], b"x", 4, 0)
            .expect_err("gap");
        assert!(matches!(
            e,
            StoreError::OutOfSequence {
                expected: 10,
                got: 12
            }
        ));
        assert_eq!(s.outbox_len().expect("len"), 4);
    }

    #[test]
    fn a_full_outbox_prunes_settled_entries_first_and_never_loses_unsubmitted_silently() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path(), Duration::ZERO).expect("open");
        let submitted = || OutboxStatus::Submitted {
            tx_hash: "AB".into(),
            height: None,
        };
        // 0..4 in a capacity of 4; 0 and 2 submitted, 1 rejected, 3 pending.
        for seq in 0..4 {
            let (bytes, hash) = att(seq);
            s.append_attestation(seq, hash, &bytes, 4, 0)
                .expect("append");
        }
        s.update_entry(0, submitted(), None).expect("0");
        s.update_entry(
            1,
            OutboxStatus::Rejected {
                code: 3,
                log: "no".into(),
            },
            None,
        )
        .expect("1");
        s.update_entry(2, submitted(), None).expect("2");
        // Each new one prunes the oldest settled entry, never the pending 3.
        let mut pruned = Vec::new();
        for seq in 4..7 {
            let (bytes, hash) = att(seq);
            let a = s
                .append_attestation(seq, hash, &bytes, 4, 0)
                .expect("append");
            assert!(a.dropped.is_empty(), "seq {seq}: {a:?}");
            pruned.extend(a.pruned);
        }
        assert_eq!(pruned, vec![0, 1, 2]);
        let seqs: Vec<u64> = s
            .outbox(0, u64::MAX)
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![3, 4, 5, 6]);
        assert_eq!(s.pending_count().expect("pending"), 4);
        // Full of unsubmitted entries: the oldest goes, and that is reported and counted.
        let (bytes, hash) = att(7);
        let a = s.append_attestation(7, hash, &bytes, 4, 0).expect("append");
        assert_eq!((a.dropped, a.pruned), (vec![3], vec![]));
        let m = s.meta().expect("meta");
        assert_eq!((m.outbox_pruned, m.outbox_dropped), (3, 1));
        // A settled entry in the middle is found too (a rejection between pending ones), and a
        // smaller capacity (a changed config) prunes down to it at once.
        s.update_entry(5, submitted(), None).expect("5");
        let (bytes, hash) = att(8);
        let a = s.append_attestation(8, hash, &bytes, 3, 0).expect("append");
        assert_eq!((a.pruned, a.dropped), (vec![5], vec![4]));
        let seqs: Vec<u64> = s
            .outbox(0, u64::MAX)
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![6, 7, 8]);
        let m = s.meta().expect("meta");
        assert_eq!((m.outbox_pruned, m.outbox_dropped), (4, 2));
        assert_eq!(s.oldest_pending().expect("oldest").map(|e| e.seq), Some(6));
    }

    #[test]
    fn trusted_blocks_are_pruned_and_a_sparse_file_is_compacted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = vec![b'x'; 100 * 1024];
        let mut s = Store::open(dir.path(), Duration::ZERO).expect("open");
        // Small and dense: nothing to do.
        let c = s.compact_if_sparse().expect("check");
        assert!(!c.compacted && c.before < COMPACT_MIN_BYTES, "{c:?}");
        s.bind_chain("c", "1:AA").expect("bind");
        for h in 1..=200u64 {
            s.put_trusted(h, &big, 100, h).expect("put");
            if h % 10 == 0 {
                let seq = h / 10 - 1;
                let (bytes, hash) = att(seq);
                s.append_attestation(seq, hash, &bytes, 100, h)
                    .expect("append");
            }
        }
        // Only the newest `keep` stay.
        assert_eq!(
            s.trusted_heights().expect("heights"),
            (101..=200).collect::<Vec<_>>()
        );
        // Full and in use: nothing to do either.
        let c = s.compact_if_sparse().expect("check");
        assert!(!c.compacted, "{c:?}");
        // A re-root drops every block: the open file keeps its size, nearly all free.
        assert!(s.bind_chain("c", "2:BB").expect("reroot"));
        let c = s.compact_if_sparse().expect("compact");
        assert!(c.compacted, "{c:?}");
        assert!(
            c.before >= 10 * 1024 * 1024 && c.after * 10 < c.before,
            "{c:?}"
        );
        assert_eq!(s.file_bytes().expect("size"), c.after);
        // Still the same working store.
        s.put_trusted(7, b"{}", 8, 7).expect("put after compaction");
        assert_eq!(s.outbox_len().expect("outbox"), 20);
        drop(s);
        let s = Store::open(dir.path(), Duration::ZERO).expect("reopen");
        assert_eq!(s.trusted_heights().expect("heights"), vec![7]);
        assert_eq!(s.meta().expect("meta").next_seq, 20);
    }

    #[test]
    fn everything_survives_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let s = Store::open(dir.path(), Duration::ZERO).expect("open");
            assert!(!s.bind_chain("dockerchain", "10:AB").expect("bind"));
            for h in 1..=12u64 {
                s.put_trusted(h, format!("{{\"h\":{h}}}").as_bytes(), 8, 100 + h)
                    .expect("put");
            }
            for seq in 0..3 {
                let (bytes, hash) = att(seq);
                s.append_attestation(seq, hash, &bytes, 16, 5)
                    .expect("append");
            }
            s.update_entry(
                0,
                OutboxStatus::Submitted {
                    tx_hash: "AB".into(),
                    height: None,
                },
                None,
            )
            .expect("submitted");
            s.update_entry(
                1,
                OutboxStatus::Rejected {
                    code: 7,
                    log: "bad".into(),
                },
                None,
            )
            .expect("rejected");
            s.update_entry(2, OutboxStatus::Pending, Some("connection refused"))
                .expect("attempt");
            s.set_halted("conflict", 9).expect("halt");
        }
        let s = Store::open(dir.path(), Duration::ZERO).expect("reopen");
        assert_eq!(
            s.trusted_heights().expect("heights"),
            (5..=12).collect::<Vec<_>>()
        );
        let (h, json) = s.latest_trusted().expect("latest").expect("some");
        assert_eq!((h, json.as_slice()), (12, b"{\"h\":12}".as_slice()));
        let m = s.meta().expect("meta");
        assert_eq!(m.chain_id, "dockerchain");
        assert_eq!(m.next_seq, 3);
        assert_eq!(m.last_verified_unix, 112);
        assert_eq!(
            m.halted.as_ref().map(|h| h.reason.as_str()),
            Some("conflict")
        );
        let e = s.outbox(0, 10).expect("list");
        assert_eq!(e[0].status.name(), "submitted");
        assert_eq!(
            e[1].status,
            OutboxStatus::Rejected {
                code: 7,
                log: "bad".into()
            }
        );
        assert_eq!(
            (e[2].attempts, e[2].last_error.as_deref()),
            (1, Some("connection refused"))
        );
        assert_eq!(s.oldest_pending().expect("pending").map(|e| e.seq), Some(2));
        assert_eq!(e[2].signed, att(2).0);
        // Another chain is refused; a new trust root drops the trusted blocks.
        assert!(matches!(
            s.bind_chain("other", "10:AB"),
            Err(StoreError::OtherChain { .. })
        ));
        assert!(s.bind_chain("dockerchain", "20:CD").expect("reroot"));
        assert!(s.latest_trusted().expect("latest").is_none());
        assert!(s.clear_halted().expect("clear").is_some());
        assert!(s.meta().expect("meta").halted.is_none());
    }

    #[test]
    fn a_second_writer_is_told_the_node_is_running_and_readers_still_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Store::open(dir.path(), Duration::ZERO).expect("open");
        s.append_attestation(0, [1; 32], b"abc", 8, 0)
            .expect("append");
        let e = Store::open(dir.path(), Duration::from_millis(200)).expect_err("held");
        let msg = e.to_string();
        assert!(msg.contains("the node is running"), "{msg}");
        assert!(msg.contains("stop it first"), "{msg}");
        let r = Store::open_read_only(dir.path())
            .expect("read-only beside the writer")
            .expect("exists");
        assert_eq!(r.outbox_len().expect("len"), 1);
        drop(s);
        assert!(
            Store::open_read_only(&dir.path().join("none"))
                .expect("no store")
                .is_none()
        );
    }

    /// redb's file backend whose writes and syncs fail with ENOSPC while `full` is set: the
    /// way a full data disk reaches redb (and latches its `Database`).
    #[derive(Debug)]
    struct FullDisk {
        inner: redb::backends::FileBackend,
        full: Arc<AtomicBool>,
    }

    impl FullDisk {
        fn check(&self) -> std::io::Result<()> {
            if self.full.load(Ordering::SeqCst) {
                Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
            } else {
                Ok(())
            }
        }
    }

    type Bound = std::ops::Bound<u64>;

    impl redb::StorageBackend for FullDisk {
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
            self.inner.read(offset, out)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> std::io::Result<()> {
            self.check()?;
            self.inner.sync_data()
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.inner.write(offset, data)
        }
        fn close(&self) -> std::io::Result<()> {
            self.inner.close()
        }
        fn try_lock_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_range(s, e)
        }
        fn try_lock_shared_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
            self.inner.try_lock_shared_range(s, e)
        }
        fn lock_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
            self.inner.lock_range(s, e)
        }
        fn lock_shared_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
            self.inner.lock_shared_range(s, e)
        }
        fn unlock_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
            self.inner.unlock_range(s, e)
        }
        fn query_lock_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
            self.inner.query_lock_range(s, e)
        }
    }

    /// A store whose disk is full while `full` is set.
    pub(crate) fn open_on_disk(
        dir: &Path,
        full: &Arc<AtomicBool>,
        reopen_every: Duration,
    ) -> Store {
        open_on_disk_with(dir, full, reopen_every, Duration::ZERO)
    }

    fn open_on_disk_with(
        dir: &Path,
        full: &Arc<AtomicBool>,
        reopen_every: Duration,
        stable_after: Duration,
    ) -> Store {
        let full = full.clone();
        Store::open_with(
            dir,
            Duration::ZERO,
            Box::new(move |path: &Path| {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)?;
                builder().create_with_backend(FullDisk {
                    inner: redb::backends::FileBackend::new(file)?,
                    full: full.clone(),
                })
            }),
            reopen_every,
            stable_after,
        )
        .expect("open")
    }

    #[test]
    fn a_full_disk_latches_redb_and_the_store_reopens_itself_when_space_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let full = Arc::new(AtomicBool::new(false));
        let s = open_on_disk(dir.path(), &full, Duration::ZERO);
        let stats = Arc::new(Stats::new());
        s.report_to(stats.clone());
        for seq in 0..3 {
            let (bytes, hash) = att(seq);
            s.append_attestation(seq, hash, &bytes, 16, 0)
                .expect("append");
        }
        // The disk fills: the commit fails and redb latches its Database ...
        full.store(true, Ordering::SeqCst);
        let (bytes, hash) = att(3);
        let e = s
            .append_attestation(3, hash, &bytes, 16, 0)
            .expect_err("a full disk");
        assert!(matches!(e, StoreError::Db { .. }), "{e}");
        assert!(s.failing().is_some());
        let shown = stats
            .chain
            .last_error()
            .expect("shown as the chain's error");
        assert!(
            shown.contains("node.redb") && shown.contains("fails"),
            "{shown}"
        );
        // ... so writes keep failing while it is full (each try reopens; the reopen, or the
        // write after it, fails again) and nothing committed is lost.
        for _ in 0..5 {
            assert!(s.append_attestation(3, hash, &bytes, 16, 0).is_err());
            assert!(s.put_trusted(1, b"{}", 4, 1).is_err());
        }
        let errors = stats.chain.store_errors.load(Ordering::Relaxed);
        assert!(errors >= 11, "{errors} counted");
        // Space returns: the next operation reopens the file and everything works again.
        full.store(false, Ordering::SeqCst);
        let m = s.meta().expect("meta after the reopen");
        assert_eq!((m.next_seq, m.prev_hash), (3, att(2).1));
        assert!(stats.chain.store_reopens.load(Ordering::Relaxed) >= 1);
        // Reads (and the reopen's own small commit) do not end the outage; a write does.
        assert!(s.failing().is_some());
        s.append_attestation(3, hash, &bytes, 16, 0)
            .expect("append after the reopen");
        assert!(s.failing().is_none());
        assert!(stats.chain.last_error().is_none());
        assert_eq!(s.outbox_len().expect("len"), 4);
        drop(s);
        // The file is a sound store.
        let s = Store::open(dir.path(), Duration::ZERO).expect("reopen");
        let seqs: Vec<u64> = s
            .outbox(0, u64::MAX)
            .expect("list")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![0, 1, 2, 3]);
    }

    #[test]
    fn an_outage_ends_only_after_a_quiet_interval_so_a_nearly_full_disk_does_not_flap() {
        let dir = tempfile::tempdir().expect("temp dir");
        let full = Arc::new(AtomicBool::new(false));
        let quiet = Duration::from_millis(300);
        let s = open_on_disk_with(dir.path(), &full, Duration::ZERO, quiet);
        let stats = Arc::new(Stats::new());
        s.report_to(stats.clone());
        full.store(true, Ordering::SeqCst);
        assert!(s.put_trusted(1, b"{}", 4, 1).is_err());
        full.store(false, Ordering::SeqCst);
        // A write right after the failure: still the same outage.
        s.put_trusted(1, b"{}", 4, 1).expect("a write that fits");
        assert!(s.failing().is_some());
        assert!(stats.chain.last_error().is_some());
        // A write after a quiet interval ends it.
        std::thread::sleep(quiet);
        s.put_trusted(2, b"{}", 4, 2).expect("write");
        assert!(s.failing().is_none());
        assert!(stats.chain.last_error().is_none());
    }

    #[test]
    fn reopens_after_an_io_error_are_rate_limited() {
        let dir = tempfile::tempdir().expect("temp dir");
        let full = Arc::new(AtomicBool::new(false));
        let s = open_on_disk(dir.path(), &full, Duration::from_secs(3600));
        let stats = Arc::new(Stats::new());
        s.report_to(stats.clone());
        full.store(true, Ordering::SeqCst);
        assert!(s.put_trusted(1, b"{}", 4, 1).is_err());
        full.store(false, Ordering::SeqCst);
        // The first reopen is due at once; it works, but a new failure waits for the interval.
        s.meta().expect("reopened");
        full.store(true, Ordering::SeqCst);
        assert!(s.put_trusted(1, b"{}", 4, 1).is_err());
        full.store(false, Ordering::SeqCst);
        let e = s
            .meta()
            .expect_err("not reopened again within the interval");
        assert!(e.to_string().contains("reopened shortly"), "{e}");
        assert_eq!(stats.chain.store_reopens.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn bytes_that_are_no_store_are_an_error_not_a_panic() {
        // (A real store with damaged pages can make redb panic; the node contains that in the
        // validator's thread: see `validator::tests::a_damaged_store_is_reported_...`.)
        let dir = tempfile::tempdir().expect("temp dir");
        let path = store_path(dir.path());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let random: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, &random).expect("write");
        let e = Store::open(dir.path(), Duration::ZERO).expect_err("random bytes");
        assert!(e.to_string().contains("node.redb"), "{e}");
        assert!(Store::open_read_only(dir.path()).is_err());
    }
}
