//! Check: with a `[chain]`, the store (`node.redb`) opens, is readable and belongs to the
//! configured chain. Without one the node opens no store, and nothing is checked.
//!
//! The store is read on a thread of its own with panics contained
//! ([`crate::validator::run_contained`]): a damaged file must give a FAIL, not crash the check.

use super::Outcome;
use crate::config::Config;
use crate::validator::store::{Meta, Store, StoreError, store_path};
use std::time::Duration;

/// What to do about a store that cannot be read.
const FIX: &str = "back the file up and move it away: a running node makes a new store at its \
                   next try (within 30 s), or on its next start; attestations still waiting in \
                   the old outbox are not submitted. Until then the video runs and the light \
                   validator does not";

/// The store's state.
pub fn check(cfg: &Config) -> Outcome {
    let path = store_path(&cfg.data_dir);
    if !cfg.chain.enabled() {
        return Outcome::ok("store", "no chain configured: the node opens no store");
    }
    if !path.exists() {
        return Outcome::ok(
            "store",
            format!(
                "{} does not exist yet; `sutantra run` creates it",
                path.display()
            ),
        );
    }
    let dir = cfg.data_dir.clone();
    let read = crate::validator::run_contained(
        "store check",
        Duration::from_secs(10),
        move || -> Result<Option<Meta>, StoreError> {
            match Store::open_read_only(&dir)? {
                Some(s) => s.meta().map(Some),
                None => Ok(None),
            }
        },
    );
    let meta = match read {
        Ok(Ok(Some(m))) => m,
        Ok(Ok(None)) => {
            return Outcome::ok("store", format!("{} is gone", path.display()));
        }
        Ok(Err(e @ StoreError::Running { .. })) => {
            return Outcome::ok("store", format!("{e} (in use: fine)"));
        }
        Ok(Err(e)) => return Outcome::fail("store", e.to_string(), FIX),
        Err(e) => {
            return Outcome::fail("store", format!("cannot read {}: {e}", path.display()), FIX);
        }
    };
    let configured = &cfg.chain.chain_id;
    if !meta.chain_id.is_empty() && &meta.chain_id != configured {
        return Outcome::fail(
            "store",
            format!(
                "{} belongs to chain `{}`, not `{configured}`",
                path.display(),
                meta.chain_id
            ),
            "use another --data-dir, or move the store away",
        );
    }
    if let Some(h) = &meta.halted {
        return Outcome::warn(
            "store",
            format!(
                "attestations are halted since {}: {}",
                crate::validator::chain::rfc3339(h.since_unix),
                h.reason
            ),
            "check both RPC servers, stop the node and run `sutantra chain resume`",
        );
    }
    Outcome::ok(
        "store",
        format!(
            "{}: chain `{}`, next attestation seq {}",
            path.display(),
            if meta.chain_id.is_empty() {
                configured
            } else {
                &meta.chain_id
            },
            meta.next_seq
        ),
    )
}
