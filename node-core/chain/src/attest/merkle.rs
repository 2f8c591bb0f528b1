//! The RFC 6962 (Certificate Transparency) Merkle tree hash, computed incrementally.
//!
//! An attestation commits to the frames of a segment with the root of the RFC 6962 tree over
//! their hashes, so that any party can recompute it with a standard library and a later proof
//! of one frame (an inclusion proof) is the standard one. The hashing is domain-separated:
//! a leaf is `SHA-256(0x00 || data)`, an interior node `SHA-256(0x01 || left || right)`, and the
//! empty tree `SHA-256("")`. A tree of `n` leaves splits at the largest power of two below `n`.
//!
//! [`MerkleAccumulator`] never keeps the leaves: it keeps the roots of the perfect subtrees that
//! the leaves so far decompose into (a "compact range", one per set bit of the leaf count), so a
//! segment of any length takes a fixed 2 KiB and each leaf costs amortised O(1) hashes.

use sha2::{Digest as _, Sha256};

/// Number of perfect-subtree slots: one per bit of a `u64` leaf count.
const SLOTS: usize = 64;

/// RFC 6962 leaf hash: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> [u8; 32] {
    Sha256::digest(b"").into()
}

/// Incremental RFC 6962 tree hash in fixed memory.
///
/// Slot `i` holds the root of a perfect subtree of `2^i` leaves whenever bit `i` of the leaf
/// count is set; the subtrees are laid left to right from the highest bit down. Appending a
/// leaf is binary increment with carries (each carry merges two equal subtrees); the root folds
/// the subtrees from the smallest (rightmost) up, exactly as RFC 6962's split at the largest
/// power of two below `n` does.
#[derive(Clone, PartialEq, Eq)]
pub struct MerkleAccumulator {
    /// Roots of the perfect subtrees, by height; meaningful only where bit `i` of `len` is set.
    slots: [[u8; 32]; SLOTS],
    /// Leaves pushed so far.
    len: u64,
}

impl std::fmt::Debug for MerkleAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerkleAccumulator")
            .field("len", &self.len)
            .field("root", &super::hex(&self.root()))
            .finish()
    }
}

impl Default for MerkleAccumulator {
    fn default() -> Self {
        Self::new()
    }
}

impl MerkleAccumulator {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            slots: [[0; 32]; SLOTS],
            len: 0,
        }
    }

    /// Appends a leaf whose data is `leaf_data` (hashed as an RFC 6962 leaf).
    ///
    /// The tree holds at most `u64::MAX` leaves; pushes past that are ignored (at one leaf per
    /// video frame this is never reached).
    pub fn push_leaf(&mut self, leaf_data: &[u8]) {
        self.push_leaf_hash(leaf_hash(leaf_data));
    }

    /// Appends a leaf given its already computed RFC 6962 leaf hash ([`leaf_hash`]).
    ///
    /// Same limit as [`push_leaf`](Self::push_leaf).
    pub fn push_leaf_hash(&mut self, leaf_hash: [u8; 32]) {
        if self.len == u64::MAX {
            return;
        }
        let mut carry = leaf_hash;
        let mut height = 0;
        // Merge with every complete subtree of the same height, like a binary increment. With
        // len < u64::MAX some bit below 64 is clear, so `height` stays in range.
        while height < SLOTS && self.len & (1 << height) != 0 {
            carry = node_hash(&self.slots[height], &carry);
            height += 1;
        }
        if let Some(slot) = self.slots.get_mut(height) {
            *slot = carry;
        }
        self.len += 1;
    }

    /// The RFC 6962 root of the leaves pushed so far (`SHA-256("")` when there are none).
    pub fn root(&self) -> [u8; 32] {
        let mut acc: Option<[u8; 32]> = None;
        for (height, slot) in self.slots.iter().enumerate() {
            if self.len & (1 << height) == 0 {
                continue;
            }
            acc = Some(match acc {
                None => *slot,
                Some(right) => node_hash(slot, &right),
            });
        }
        acc.unwrap_or_else(empty_root)
    }

    /// Number of leaves pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// No leaf was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// RFC 6962 section 2.1 written the way the RFC defines it (recursive, all leaves in memory):
/// the reference the accumulator is tested against.
#[cfg(test)]
pub(crate) fn reference_root<T: AsRef<[u8]>>(leaves: &[T]) -> [u8; 32] {
    match leaves {
        [] => empty_root(),
        [one] => leaf_hash(one.as_ref()),
        _ => {
            let n = leaves.len();
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::hex;
    #[test]
    fn attest_merkle_matches_the_recursive_definition_for_0_to_70_leaves() {
        let leaves: Vec<Vec<u8>> = (0..=70u32)
            .map(|i| format!("frame-{i}").into_bytes())
            .collect();
        for n in 0..=70 {
            let mut acc = MerkleAccumulator::new();
            for leaf in &leaves[..n] {
                acc.push_leaf(leaf);
            }
            assert_eq!(acc.len(), n as u64);
            assert_eq!(acc.root(), reference_root(&leaves[..n]), "n = {n}");
        }
    }

    #[test]
    fn attest_merkle_matches_the_certificate_transparency_vectors() {
        // Leaves and tree heads of the Certificate Transparency reference tests (RFC 6962).
        let leaves: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut acc = MerkleAccumulator::new();
        assert_eq!(hex(&acc.root()), roots[0]);
        for (n, leaf) in leaves.iter().enumerate() {
            acc.push_leaf(leaf);
            assert_eq!(hex(&acc.root()), roots[n + 1], "tree of {} leaves", n + 1);
        }
    }

    #[test]
    fn attest_merkle_root_does_not_change_the_state() {
        let mut acc = MerkleAccumulator::new();
        for i in 0..13u8 {
            acc.push_leaf(&[i]);
            let (a, b) = (acc.root(), acc.root());
            assert_eq!(a, b);
        }
        assert!(!acc.is_empty());
        assert!(format!("{acc:?}").contains("len: 13"));
    }

    #[test]
    fn attest_merkle_leaf_hash_input_equals_leaf_data_input() {
        let mut by_data = MerkleAccumulator::new();
        let mut by_hash = MerkleAccumulator::new();
        for i in 0..9u8 {
            by_data.push_leaf(&[i, i]);
            by_hash.push_leaf_hash(leaf_hash(&[i, i]));
        }
        assert_eq!(by_data, by_hash);
    }
}
