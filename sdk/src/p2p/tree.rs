//! The BLAKE3 tree over a blob's chunks: each chunk's chaining value, and the blob's BLAKE3
//! hash recomputed from them.
//!
//! BLAKE3 hashes its input as a binary tree of 1 KiB leaves whose left subtrees are always
//! complete powers of two. A chunk of a power-of-two size at an offset that is a multiple of
//! that size is therefore one whole subtree, and its chaining value (the subtree's non-root
//! hash) can be checked on its own, in any order. The chaining values of all chunks, merged
//! in the same shape, give `blake3::hash` of the whole blob: so a manifest's chunk list is
//! checked against the blob's name before any chunk is fetched, and every byte is hashed once
//! (the verified streaming of Bao, with the official crate's `hazmat` API).

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root,
};

/// The hash that stands for the chunk at `offset` of a blob cut into chunks of a
/// power-of-two size of at least 1 KiB: its chaining value, or for a blob of one chunk,
/// the blob's BLAKE3 hash itself (a lone chunk is the tree's root).
pub fn chunk_hash_at(offset: u64, data: &[u8], only_chunk: bool) -> [u8; 32] {
    let mut h = chunk_hasher(offset);
    h.update(data);
    finish_chunk(&h, only_chunk)
}

/// A hasher for the chunk that starts at `offset`, to be fed its bytes.
pub fn chunk_hasher(offset: u64) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    if offset > 0 {
        h.set_input_offset(offset);
    }
    h
}

/// [`chunk_hash_at`] of the bytes fed to `h` (from [`chunk_hasher`]).
pub fn finish_chunk(h: &blake3::Hasher, only_chunk: bool) -> [u8; 32] {
    if only_chunk {
        h.finalize().into()
    } else {
        h.finalize_non_root()
    }
}

/// `blake3::hash` of a blob of `size` bytes from its chunks' [`chunk_hash_at`] values.
/// `None` when the count does not fit `size` and `chunk_size`.
pub fn root_of(chunk_hashes: &[[u8; 32]], size: u64, chunk_size: u32) -> Option<[u8; 32]> {
    let piece = u64::from(chunk_size);
    let expected = size.div_ceil(piece.max(1));
    if chunk_hashes.len() as u64 != expected {
        return None;
    }
    match chunk_hashes {
        [] => Some(blake3::hash(&[]).into()),
        [only] => Some(*only),
        _ => {
            let left = left_subtree_len(size);
            let k = (left / piece) as usize;
            let l = subtree(&chunk_hashes[..k], left, piece);
            let r = subtree(&chunk_hashes[k..], size - left, piece);
            Some(merge_subtrees_root(&l, &r, Mode::Hash).into())
        }
    }
}

/// Chaining value of the subtree `len` bytes long made of the chunks `cvs`.
fn subtree(cvs: &[ChainingValue], len: u64, piece: u64) -> ChainingValue {
    if cvs.len() == 1 {
        return cvs[0];
    }
    let left = left_subtree_len(len);
    let k = (left / piece) as usize;
    merge_subtrees_non_root(
        &subtree(&cvs[..k], left, piece),
        &subtree(&cvs[k..], len - left, piece),
        Mode::Hash,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(data: &[u8], piece: usize) -> Vec<[u8; 32]> {
        let only = data.len() <= piece;
        data.chunks(piece)
            .enumerate()
            .map(|(i, c)| chunk_hash_at((i * piece) as u64, c, only))
            .collect()
    }

    #[test]
    fn the_root_of_the_chunk_hashes_is_blake3_of_the_blob() {
        let data: Vec<u8> = (0..(9 << 16) + 77u32)
            .map(|i| ((i * 31) >> 7) as u8)
            .collect();
        let piece = 1usize << 16;
        for len in [
            0,
            1,
            1023,
            1024,
            piece - 1,
            piece,
            piece + 1,
            2 * piece,
            3 * piece + 5,
        ]
        .into_iter()
        .chain([5 * piece, 7 * piece + 1, 8 * piece, 9 * piece + 77])
        {
            let d = &data[..len];
            let h = hashes(d, piece);
            assert_eq!(
                root_of(&h, len as u64, piece as u32),
                Some(*blake3::hash(d).as_bytes()),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn a_changed_chunk_or_a_wrong_count_does_not_give_the_root() {
        let data = vec![7u8; 5 << 16];
        let piece = 1u32 << 16;
        let mut h = hashes(&data, piece as usize);
        let root = root_of(&h, data.len() as u64, piece).unwrap();
        assert_eq!(root_of(&h[..4], data.len() as u64, piece), None);
        h.swap(0, 1);
        assert_ne!(root_of(&h, data.len() as u64, piece), Some(root));
        // A chunk's value depends on where it sits, not only on its bytes.
        assert_ne!(chunk_hash_at(0, &data[..1 << 16], false), h[0]);
    }
}
