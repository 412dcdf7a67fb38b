//! Blob manifests: the chunk-hash list that binds fixed-size chunks to a blob's name.
//!
//! A blob is named by its content hash, in one of two ways ([`Naming`]):
//! - **BLAKE3** (job inputs and their shared parts; the job's on-chain `inputHash`): the
//!   name is `blake3::hash` of the bytes. The manifest lists each chunk's BLAKE3 chaining
//!   value ([`super::tree`]); a fetcher recomputes the name from that list before it asks
//!   for any chunk, then checks every chunk as it arrives: each byte is hashed once, and a
//!   lying peer is caught at its first bad chunk (or its manifest).
//! - **sha256** (result blobs: the escrow's `resultHashOf` is a sha256 the chain can
//!   compute): the chunks are checked against the same chaining values as they arrive, and
//!   the name once over the reassembled blob at the end, which binds the list to it.
//!
//! Which naming a manifest declares needs no trust: a blob verifies under a name only if
//! its bytes hash to that name with the declared function, and finding bytes whose BLAKE3
//! hash equals another blob's sha256 (or the reverse) is as hard as breaking either.

use sha2::{Digest, Sha256};

use super::WireError;
use super::codec::{Reader, Writer};
use super::tree;

/// The name of a blob everywhere in ShareThePower: its BLAKE3 hash or its sha256
/// ([`Naming`]).
pub type ContentHash = [u8; 32];

/// Chunk size used when storing new blobs: 1 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 20;
/// Smallest chunk size a manifest may declare (64 KiB).
pub const MIN_CHUNK_SIZE: u32 = 1 << 16;
/// Largest chunk size a manifest may declare (4 MiB): bounds every receive buffer.
pub const MAX_CHUNK_SIZE: u32 = 1 << 22;
/// Version 3: a naming byte, BLAKE3 chaining values as chunk hashes (version 2 listed
/// plain BLAKE3 hashes of the chunks, version 1 sha256 hashes).
const VERSION: u8 = 3;
const HEADER_LEN: usize = 1 + 1 + 32 + 8 + 4;

/// How a blob's name is computed from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `blake3::hash` of the bytes ([`input_hash`]): checked from the manifest up front.
    Blake3,
    /// sha256 of the bytes ([`sha256`]): checked over the whole blob once it is fetched.
    Sha256,
}

impl Naming {
    fn code(self) -> u8 {
        match self {
            Naming::Blake3 => 1,
            Naming::Sha256 => 2,
        }
    }

    fn from_code(code: u8) -> Result<Self, WireError> {
        match code {
            1 => Ok(Naming::Blake3),
            2 => Ok(Naming::Sha256),
            _ => Err(WireError::Invalid("unknown blob naming")),
        }
    }
}

/// sha256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The name of a job's input (its on-chain `inputHash`) and of every input part:
/// `blake3::hash` of the bytes, as `b3sum` prints it.
pub fn input_hash(data: &[u8]) -> [u8; 32] {
    blake3::hash(data).into()
}

/// Chunk-hash list of one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobManifest {
    /// How [`Self::content_hash`] is computed.
    pub naming: Naming,
    /// The blob's name: its BLAKE3 hash or sha256 (see [`Self::naming`]).
    pub content_hash: ContentHash,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Size of every chunk but the last.
    pub chunk_size: u32,
    /// Each chunk's BLAKE3 chaining value ([`super::tree::chunk_hash_at`]), in order.
    pub chunk_hashes: Vec<[u8; 32]>,
}

/// Builds a manifest from a blob's bytes fed in order, in pieces of any size. The bytes
/// are hashed as they come, never copied.
pub struct ManifestBuilder {
    naming: Naming,
    chunk_size: u32,
    sha: Option<Sha256>,
    size: u64,
    chunk_hashes: Vec<[u8; 32]>,
    /// The chunk being fed, and how many of its bytes came so far.
    current: blake3::Hasher,
    current_len: u32,
}

impl ManifestBuilder {
    /// A builder for a blob named by `naming`, cut into `chunk_size`-byte chunks.
    pub fn new(naming: Naming, chunk_size: u32) -> Result<Self, WireError> {
        check_chunk_size(chunk_size)?;
        Ok(Self {
            naming,
            chunk_size,
            sha: (naming == Naming::Sha256).then(Sha256::new),
            size: 0,
            chunk_hashes: Vec::new(),
            current: blake3::Hasher::new(),
            current_len: 0,
        })
    }

    /// Feeds the next bytes of the blob.
    pub fn update(&mut self, mut data: &[u8]) {
        if let Some(h) = &mut self.sha {
            h.update(data);
        }
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.current_len == self.chunk_size {
                // More bytes follow a full chunk: it is not the blob's only chunk.
                self.chunk_hashes
                    .push(tree::finish_chunk(&self.current, false));
                self.current = tree::chunk_hasher(self.next_offset());
                self.current_len = 0;
            }
            let take = ((self.chunk_size - self.current_len) as usize).min(data.len());
            self.current.update(&data[..take]);
            self.current_len += take as u32;
            data = &data[take..];
        }
    }

    /// Offset of the chunk after the ones already listed.
    fn next_offset(&self) -> u64 {
        self.chunk_hashes.len() as u64 * u64::from(self.chunk_size)
    }

    /// The manifest of everything fed.
    pub fn finish(mut self) -> BlobManifest {
        if self.current_len > 0 {
            let only = self.chunk_hashes.is_empty();
            self.chunk_hashes
                .push(tree::finish_chunk(&self.current, only));
        }
        let content_hash = match self.sha.take() {
            Some(h) => h.finalize().into(),
            None => tree::root_of(&self.chunk_hashes, self.size, self.chunk_size)
                .expect("one hash per chunk"),
        };
        BlobManifest {
            naming: self.naming,
            content_hash,
            size: self.size,
            chunk_size: self.chunk_size,
            chunk_hashes: self.chunk_hashes,
        }
    }
}

impl BlobManifest {
    /// Builds the manifest of `data` with the given naming and chunk size.
    pub fn from_bytes(data: &[u8], naming: Naming, chunk_size: u32) -> Result<Self, WireError> {
        let mut b = ManifestBuilder::new(naming, chunk_size)?;
        b.update(data);
        Ok(b.finish())
    }

    /// Whether the chunk list can belong to the name: for a BLAKE3 name, the chunk hashes
    /// must merge to it (a check of the whole list, before any chunk is fetched); a sha256
    /// name is checked over the blob at the end instead ([`Self::needs_final_check`]).
    pub fn list_matches_name(&self) -> bool {
        match self.naming {
            Naming::Blake3 => {
                tree::root_of(&self.chunk_hashes, self.size, self.chunk_size)
                    == Some(self.content_hash)
            }
            Naming::Sha256 => true,
        }
    }

    /// Whether the reassembled blob must still be hashed to check its name (sha256 names).
    pub fn needs_final_check(&self) -> bool {
        self.naming == Naming::Sha256
    }

    /// Number of chunks a blob of `size` bytes has with `chunk_size`-byte chunks.
    pub fn chunk_count_for(size: u64, chunk_size: u32) -> u64 {
        size.div_ceil(u64::from(chunk_size.max(1)))
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunk_hashes.len()
    }

    /// Byte offset and length of chunk `index` (callers pass `index < chunk_count()`).
    pub fn chunk_range(&self, index: usize) -> (u64, usize) {
        let start = index as u64 * u64::from(self.chunk_size);
        let len = (self.size - start.min(self.size)).min(u64::from(self.chunk_size));
        (start, len as usize)
    }

    /// Whether `data` is chunk `index` of this blob.
    pub fn verify_chunk(&self, index: usize, data: &[u8]) -> bool {
        let (offset, len) = self.chunk_range(index);
        len == data.len()
            && self
                .chunk_hashes
                .get(index)
                .is_some_and(|h| *h == tree::chunk_hash_at(offset, data, self.chunk_count() == 1))
    }

    /// sha256 of the encoded manifest: a short, announceable commitment to the chunk list.
    pub fn root(&self) -> [u8; 32] {
        sha256(&self.encode())
    }

    /// Encoded size of a manifest for a blob of `size` bytes (to bound receive buffers).
    pub fn encoded_len_for(size: u64, chunk_size: u32) -> u64 {
        HEADER_LEN as u64 + 32 * Self::chunk_count_for(size, chunk_size)
    }

    /// Encodes the manifest.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION);
        w.u8(self.naming.code());
        w.raw(&self.content_hash);
        w.u64(self.size);
        w.u32(self.chunk_size);
        for h in &self.chunk_hashes {
            w.raw(h);
        }
        w.finish()
    }

    /// Decodes a manifest received from a peer, refusing blobs larger than `max_size`.
    pub fn decode(bytes: &[u8], max_size: u64) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion {
                kind: "blob manifest",
                version,
                supported: VERSION,
            });
        }
        let naming = Naming::from_code(r.u8()?)?;
        let content_hash = r.array()?;
        let size = r.u64()?;
        let chunk_size = r.u32()?;
        check_chunk_size(chunk_size)?;
        if size > max_size {
            return Err(WireError::TooLarge {
                len: usize::try_from(size).unwrap_or(usize::MAX),
                max: usize::try_from(max_size).unwrap_or(usize::MAX),
            });
        }
        let count = Self::chunk_count_for(size, chunk_size);
        let expected = Self::encoded_len_for(size, chunk_size);
        if bytes.len() as u64 != expected {
            return Err(if (bytes.len() as u64) < expected {
                WireError::Truncated
            } else {
                WireError::TrailingBytes(bytes.len() - expected as usize)
            });
        }
        let chunk_hashes = (0..count).map(|_| r.array()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            naming,
            content_hash,
            size,
            chunk_size,
            chunk_hashes,
        })
    }
}

fn check_chunk_size(chunk_size: u32) -> Result<(), WireError> {
    // A power of two, so that every chunk is one whole subtree of the BLAKE3 tree.
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) && chunk_size.is_power_of_two() {
        Ok(())
    } else {
        Err(WireError::Invalid(
            "chunk size must be a power of two between 64 KiB and 4 MiB",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: u32) -> Vec<u8> {
        (0..len).map(|i| (i / 300) as u8 ^ (i as u8)).collect()
    }

    #[test]
    fn manifest_roundtrips_and_verifies_chunks() {
        let data = sample(200_000);
        for naming in [Naming::Blake3, Naming::Sha256] {
            let m = BlobManifest::from_bytes(&data, naming, MIN_CHUNK_SIZE).unwrap();
            assert_eq!(m.chunk_count(), 4);
            assert_eq!(m.chunk_range(3), (3 * 65536, 200_000 - 3 * 65536));
            assert!(m.verify_chunk(1, &data[65536..131072]));
            assert!(!m.verify_chunk(1, &data[0..65536]), "chunk 0's bytes at 1");
            assert!(!m.verify_chunk(3, &data[3 * 65536..200_000 - 1]), "short");
            assert!(!m.verify_chunk(9, &data[0..65536]));
            let bytes = m.encode();
            assert_eq!(BlobManifest::decode(&bytes, 1 << 30).unwrap(), m);
            assert!(matches!(
                BlobManifest::decode(&bytes, 1000),
                Err(WireError::TooLarge { .. })
            ));
            assert_eq!(
                BlobManifest::decode(&bytes[..bytes.len() - 1], 1 << 30),
                Err(WireError::Truncated)
            );
        }
    }

    #[test]
    fn blobs_are_named_by_blake3_or_sha256_and_a_blake3_list_is_checked_up_front() {
        let data = sample(300_000);
        let b = BlobManifest::from_bytes(&data, Naming::Blake3, MIN_CHUNK_SIZE).unwrap();
        assert_eq!(b.content_hash, *blake3::hash(&data).as_bytes());
        assert_eq!(b.content_hash, input_hash(&data));
        assert!(b.list_matches_name() && !b.needs_final_check());
        let s = BlobManifest::from_bytes(&data, Naming::Sha256, MIN_CHUNK_SIZE).unwrap();
        assert_eq!(s.content_hash, sha256(&data));
        assert!(s.needs_final_check());
        assert_eq!(s.chunk_hashes, b.chunk_hashes, "chunks are checked alike");
        // A forged chunk list for the real name is refused before any chunk is asked for.
        let mut forged = b.clone();
        forged.chunk_hashes[2] = tree::chunk_hash_at(2 * 65536, &[0u8; 65536], false);
        assert!(!forged.list_matches_name());
        let mut renamed = b.clone();
        renamed.content_hash[0] ^= 1;
        assert!(!renamed.list_matches_name());
        // Older manifests are refused, not misread.
        for old in [1u8, 2] {
            let mut v = b.encode();
            v[0] = old;
            assert!(matches!(
                BlobManifest::decode(&v, 1 << 30),
                Err(WireError::UnsupportedVersion { version, .. }) if version == old
            ));
        }
        let mut bad_naming = b.encode();
        bad_naming[1] = 9;
        assert!(BlobManifest::decode(&bad_naming, 1 << 30).is_err());
    }

    #[test]
    fn the_builder_gives_the_same_manifest_whatever_the_pieces() {
        let data = sample(3 * 65536 + 11);
        let whole = BlobManifest::from_bytes(&data, Naming::Blake3, MIN_CHUNK_SIZE).unwrap();
        for step in [1000usize, 65536, 65537, 200_000] {
            let mut b = ManifestBuilder::new(Naming::Blake3, MIN_CHUNK_SIZE).unwrap();
            data.chunks(step).for_each(|p| b.update(p));
            assert_eq!(b.finish(), whole, "pieces of {step}");
        }
        let one = BlobManifest::from_bytes(&data[..65536], Naming::Blake3, MIN_CHUNK_SIZE).unwrap();
        assert_eq!(one.chunk_hashes, vec![input_hash(&data[..65536])]);
        assert!(one.verify_chunk(0, &data[..65536]) && one.list_matches_name());
    }

    #[test]
    fn empty_blob_has_no_chunks() {
        let m = BlobManifest::from_bytes(&[], Naming::Blake3, DEFAULT_CHUNK_SIZE).unwrap();
        assert_eq!(m.chunk_count(), 0);
        assert_eq!(m.content_hash, input_hash(&[]));
        assert!(m.list_matches_name());
        assert_eq!(BlobManifest::decode(&m.encode(), 0).unwrap(), m);
    }

    #[test]
    fn manifest_rejects_bad_chunk_sizes() {
        assert!(BlobManifest::from_bytes(b"x", Naming::Blake3, 1).is_err());
        assert!(BlobManifest::from_bytes(b"x", Naming::Blake3, 3 << 16).is_err());
        let mut bytes = BlobManifest::from_bytes(b"x", Naming::Blake3, MIN_CHUNK_SIZE)
            .unwrap()
            .encode();
        bytes[42..46].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            BlobManifest::decode(&bytes, 1 << 30),
            Err(WireError::Invalid(_))
        ));
    }
}
