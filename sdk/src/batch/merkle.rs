//! One Merkle root over a batch's chunk results, and proofs that one chunk's result is in it.
//!
//! The rule, enough to recompute a root anywhere (SHA-256 throughout, `||` concatenation):
//!
//! 1. The leaves are the chunks' result hashes in chunk order: `h_i = SHA-256(output_i)`,
//!    as [`crate::kernels::result_hash`] and [`crate::p2p::sha256`] compute them.
//! 2. Level 0 holds `SHA-256(0x00 || h_i)` for each leaf (the domain byte keeps a leaf
//!    from ever passing for an inner node).
//! 3. Each next level pairs neighbours `(0, 1), (2, 3), …` into `SHA-256(0x01 || left ||
//!    right)`; a level of odd length promotes its last node unchanged to the next level.
//! 4. The root is the single node of the last level. One leaf: `SHA-256(0x00 || h_0)`.
//!    No leaves: 32 zero bytes.
//!
//! A proof lists the sibling of the leaf's node on each level, bottom-up, skipping the
//! levels where that node was promoted (it has no sibling there). [`verify`] needs the
//! leaf's index and the number of leaves to know, level by level, which side the node is
//! on and whether it was promoted.
//!
//! The root does not commit to the number of leaves (a promoted node looks like any other
//! node to a verifier): keep the count with the root, as a batch's manifest does, and check
//! proofs against that count.

use sha2::{Digest, Sha256};

/// Domain byte of a leaf node.
pub const LEAF_TAG: u8 = 0x00;
/// Domain byte of an inner node.
pub const NODE_TAG: u8 = 0x01;

/// `SHA-256(0x00 || result_hash)`: a leaf's node on level 0.
pub fn leaf_node(result_hash: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([LEAF_TAG])
        .chain_update(result_hash)
        .finalize()
        .into()
}

/// `SHA-256(0x01 || left || right)`: the parent of two nodes.
pub fn inner_node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update([NODE_TAG])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The leaves of a batch's outputs: the SHA-256 of each, in chunk order.
pub fn output_leaves(outputs: &[Vec<u8>]) -> Vec<[u8; 32]> {
    outputs
        .iter()
        .map(|o| crate::kernels::result_hash(o))
        .collect()
}

fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => inner_node(left, right),
            [promoted] => *promoted,
            _ => unreachable!("chunks(2) yields one or two nodes"),
        })
        .collect()
}

/// The root over `leaves` (result hashes in chunk order).
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = leaves.iter().map(leaf_node).collect();
    if level.is_empty() {
        return [0; 32];
    }
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// The proof that `leaves[index]` is under [`root`]`(leaves)`; empty when `index` is out of
/// range (and then [`verify`] fails).
pub fn proof(leaves: &[[u8; 32]], index: usize) -> Vec<[u8; 32]> {
    let mut siblings = Vec::new();
    if index >= leaves.len() {
        return siblings;
    }
    let mut level: Vec<[u8; 32]> = leaves.iter().map(leaf_node).collect();
    let mut at = index;
    while level.len() > 1 {
        if let Some(sibling) = level.get(at ^ 1) {
            siblings.push(*sibling);
        }
        level = next_level(&level);
        at /= 2;
    }
    siblings
}

/// Whether `proof` shows `leaf` (a result hash) at `index` of `count` leaves under `root`.
pub fn verify(
    root: &[u8; 32],
    leaf: &[u8; 32],
    index: usize,
    count: usize,
    proof: &[[u8; 32]],
) -> bool {
    if index >= count {
        return false;
    }
    let mut siblings = proof.iter();
    let (mut node, mut at, mut len) = (leaf_node(leaf), index, count);
    while len > 1 {
        let promoted = at == len - 1 && !len.is_multiple_of(2);
        if !promoted {
            let Some(sibling) = siblings.next() else {
                return false;
            };
            node = if at.is_multiple_of(2) {
                inner_node(&node, sibling)
            } else {
                inner_node(sibling, &node)
            };
        }
        at /= 2;
        len = len.div_ceil(2);
    }
    siblings.next().is_none() && node == *root
}
