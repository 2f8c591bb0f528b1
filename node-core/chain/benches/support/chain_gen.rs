//! Synthetic CometBFT light blocks, signed for real: shared by `benches/verify.rs` and
//! `tests/chain_vectors.rs` (included there with `#[path]`).
//!
//! The upstream vectors cover verdicts for small sets; the benchmark needs 100 and 1000
//! validators, and the bisection tests need chains whose validator sets change in known ways.
//! So this builds them: Ed25519 keys from fixed seeds (`ed25519-compact`, deterministic), real
//! headers hashed with the core's SHA-256 provider, and precommit signatures over CometBFT's
//! canonical vote sign bytes (`tendermint::Vote::into_signable_vec`, the same bytes the verifier
//! rebuilds) — nothing is mocked.

#![allow(dead_code)] // each includer uses a different subset

use std::collections::BTreeMap;

use ed25519_compact::{KeyPair, Seed};
use sutantra_chain::light::tendermint::account;
use sutantra_chain::light::tendermint::block::header::Version;
use sutantra_chain::light::tendermint::block::{self, Commit, CommitSig, Header, Height, Round};
use sutantra_chain::light::tendermint::hash::{AppHash, Hash};
use sutantra_chain::light::tendermint::validator::{Info, Set};
use sutantra_chain::light::tendermint::vote::{Power, Type, ValidatorIndex, Vote};
use sutantra_chain::light::tendermint::{PublicKey, Signature, chain, node};
use sutantra_chain::light::{LightBlock, Sha256Provider, SignedHeader, Time, ed25519_address};

/// Seconds since the epoch of height 0 (2024-01-01T00:00:00Z); height `h` is `h * 5` s later.
pub const GENESIS_SECS: i64 = 1_704_067_200;

/// One validator: its key pair and its entry in a validator set.
pub struct Validator {
    pub key: KeyPair,
    pub info: Info,
}

/// `n` validators of voting power `power`, keys from seeds `(group, index)`.
pub fn validators(group: u32, n: usize, power: u64) -> Vec<Validator> {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&group.to_be_bytes());
            seed[4..12].copy_from_slice(&(i as u64).to_be_bytes());
            seed[31] = 0x5a;
            let key = KeyPair::from_seed(Seed::new(seed));
            let mut pk = [0u8; 32];
            pk.copy_from_slice(key.pk.as_ref());
            let info = Info {
                address: account::Id::new(ed25519_address(&pk)),
                pub_key: PublicKey::from_raw_ed25519(&pk).expect("32-byte key"),
                power: Power::try_from(power).expect("power in range"),
                name: None,
                proposer_priority: Default::default(),
            };
            Validator { key, info }
        })
        .collect()
}

/// The validator set of `vals` (sorted into CometBFT's order).
pub fn set_of(vals: &[&Validator]) -> Set {
    Set::without_proposer(vals.iter().map(|v| v.info.clone()).collect())
}

pub fn time_at(height: u64) -> Time {
    Time::from_unix_timestamp(GENESIS_SECS + 5 * height as i64, 0).expect("time in range")
}

/// A light block at `height` on `chain_id` whose validators are `vals` and next validators
/// `next`, signed by the validators of `vals` for which `signs` is true (the others absent).
pub fn block(
    chain_id: &str,
    height: u64,
    vals: &[&Validator],
    next: &[&Validator],
    signs: &dyn Fn(&Validator) -> bool,
) -> LightBlock {
    let chain_id = chain::Id::try_from(chain_id).expect("chain id");
    let set = set_of(vals);
    let next_set = set_of(next);
    let time = time_at(height);
    let height_t = Height::try_from(height).expect("height");
    let header = Header {
        version: Version { block: 11, app: 1 },
        chain_id: chain_id.clone(),
        height: height_t,
        time,
        last_block_id: None,
        last_commit_hash: None,
        data_hash: None,
        validators_hash: set.hash_with::<Sha256Provider>(),
        next_validators_hash: next_set.hash_with::<Sha256Provider>(),
        consensus_hash: Hash::Sha256([0x11; 32]),
        app_hash: AppHash::try_from(vec![0u8; 8]).expect("app hash"),
        last_results_hash: None,
        evidence_hash: None,
        proposer_address: set.validators()[0].address,
    };
    let block_id = block::Id {
        hash: header.hash_with::<Sha256Provider>(),
        part_set_header: block::parts::Header::new(1, Hash::Sha256([0x22; 32]))
            .expect("part set header"),
    };
    let keys: BTreeMap<account::Id, &Validator> =
        vals.iter().map(|v| (v.info.address, *v)).collect();
    let round = Round::from(0u8);
    let signatures = set
        .validators()
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let v = keys[&info.address];
            if !signs(v) {
                return CommitSig::BlockIdFlagAbsent;
            }
            let vote = Vote {
                vote_type: Type::Precommit,
                height: height_t,
                round,
                block_id: Some(block_id),
                timestamp: Some(time),
                validator_address: info.address,
                validator_index: ValidatorIndex::try_from(i).expect("index"),
                signature: None,
                extension: Vec::new(),
                extension_signature: None,
            };
            let sign_bytes = vote.into_signable_vec(chain_id.clone());
            let sig = v.key.sk.sign(&sign_bytes, None);
            CommitSig::BlockIdFlagCommit {
                validator_address: info.address,
                timestamp: time,
                signature: Some(Signature::try_from(sig.as_ref()).expect("64 bytes")),
            }
        })
        .collect();
    let commit = Commit {
        height: height_t,
        round,
        block_id,
        signatures,
    };
    let signed_header = SignedHeader::new(header, commit).expect("same height");
    LightBlock::new(signed_header, set, next_set, node::Id::new([0; 20]))
}

/// Everyone signs.
pub fn all(_: &Validator) -> bool {
    true
}
