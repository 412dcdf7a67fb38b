//! Known answers of the Merkle rule (computed independently with Python's hashlib) and
//! proofs for every leaf of trees of many sizes.

use sha2::{Digest, Sha256};
use stp_sdk::batch::merkle::{inner_node, leaf_node, output_leaves, proof, root, verify};

fn leaves(count: u8) -> Vec<[u8; 32]> {
    (0..count).map(|i| Sha256::digest([i]).into()).collect()
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn batch_merkle_known_answers() {
    // hashlib: leaves sha256(bytes([i])); leaf = sha256(0x00||h), node = sha256(0x01||l||r).
    assert_eq!(root(&[]), [0; 32]);
    assert_eq!(
        root(&leaves(1)),
        hex32("d9de27625445003d8a9739a851e3ff8d41c0683630b4d63a88327a6aaa37c409")
    );
    assert_eq!(
        root(&leaves(2)),
        hex32("604d540f09268b91672ab011394d5266ccd7d4484d0d109411a55848126a1b2c")
    );
    // Five leaves: the fifth is promoted twice.
    assert_eq!(
        root(&leaves(5)),
        hex32("6b313b611b40676b9e1dfd70c4503f2379f88f0f1c2740fb7e1cacc32c113465")
    );
}

#[test]
fn batch_merkle_rule_spelled_out_for_three_leaves() {
    let l = leaves(3);
    let (a, b, c) = (leaf_node(&l[0]), leaf_node(&l[1]), leaf_node(&l[2]));
    assert_eq!(root(&l), inner_node(&inner_node(&a, &b), &c));
    let mut pre = vec![0x01];
    pre.extend_from_slice(&a);
    pre.extend_from_slice(&b);
    assert_eq!(inner_node(&a, &b), <[u8; 32]>::from(Sha256::digest(&pre)));
    assert_ne!(
        root(&l[..1]),
        l[0],
        "a leaf is domain-separated from its hash"
    );
}

#[test]
fn batch_merkle_every_proof_verifies_and_wrong_claims_fail() {
    for count in 1..=17u8 {
        let l = leaves(count);
        let r = root(&l);
        let n = count as usize;
        for i in 0..n {
            let p = proof(&l, i);
            assert!(verify(&r, &l[i], i, n, &p), "count {count} index {i}");
            assert!(!verify(&r, &[0xaa; 32], i, n, &p), "wrong leaf");
            if n > 1 {
                assert!(
                    !verify(&r, &l[i], (i + 1) % n, n, &p),
                    "wrong index {count}/{i}"
                );
            }
            assert!(!verify(&r, &l[i], n + i, n, &p), "index past the end");
            let mut longer = p.clone();
            longer.push([0; 32]);
            assert!(!verify(&r, &l[i], i, n, &longer), "extra proof element");
            if let Some(first) = p.first() {
                let mut tampered = p.clone();
                tampered[0] = leaf_node(first);
                assert!(!verify(&r, &l[i], i, n, &tampered), "tampered sibling");
                assert!(!verify(&r, &l[i], i, n, &p[1..]), "truncated proof");
            }
        }
        assert!(proof(&l, n).is_empty());
    }
}

#[test]
fn batch_merkle_proof_skips_promoted_levels() {
    // 5 leaves: levels 5 -> 3 -> 2 -> 1; leaf 4 is promoted twice, then paired once.
    let l = leaves(5);
    assert_eq!(proof(&l, 4).len(), 1);
    assert_eq!(proof(&l, 0).len(), 3);
}

#[test]
fn batch_merkle_leaves_are_the_result_hashes_of_the_outputs() {
    let outputs = vec![b"chunk zero".to_vec(), vec![], vec![7; 100]];
    let hashes = output_leaves(&outputs);
    for (h, o) in hashes.iter().zip(&outputs) {
        assert_eq!(*h, stp_sdk::kernels::result_hash(o));
        assert_eq!(*h, stp_sdk::p2p::sha256(o));
    }
}
