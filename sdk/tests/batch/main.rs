//! Tests of workload batches: splitting, assembly, PNG output and the Merkle root.
//!
//! One test binary, one module per operation.

mod errors;
mod merkle;
mod png_image;
mod split_props;
mod split_shapes;

use stp_sdk::kernels::{KernelId, find_kernel};

/// The id of a built-in kernel.
pub(crate) fn id(name: &str) -> KernelId {
    find_kernel(name).expect("built-in kernel").id
}

/// `len` pseudo-random bytes from `seed` (splitmix64), so a proptest case is reproducible
/// from its seed alone.
pub(crate) fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&next().to_le_bytes());
    }
    out.truncate(len);
    out
}
