//! Content-addressed blob store on disk.
//!
//! Layout under the store's root:
//! - `blobs/<hex name>`: complete, verified blobs (named by BLAKE3 or sha256: `Naming`); `blobs/<hex>.manifest` their
//!   chunk-hash list (so serving never re-hashes the blob);
//! - `partial/<hex>` (+ `.manifest`): downloads in progress, kept for resume;
//! - `tmp/`: files being written, renamed into place when complete (atomic).
//!
//! Downloads in progress are also registered in memory ([`Partial`]) with the chunks
//! verified so far, so the node serves those chunks to other fetchers while it is still
//! fetching the rest.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use stp_sdk::p2p::{BlobManifest, ContentHash, DEFAULT_CHUNK_SIZE, ManifestBuilder, Naming};

use super::error::StoreError;

/// Handle to the on-disk store; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp_counter: AtomicU64,
    partials: Mutex<HashMap<ContentHash, Arc<Partial>>>,
}

/// A download in progress: its manifest, its file and the chunks verified so far.
#[derive(Debug)]
pub struct Partial {
    /// Manifest of the blob being fetched.
    pub manifest: BlobManifest,
    file: File,
    have: Mutex<Vec<bool>>,
}

impl Partial {
    /// Which chunks are verified and on disk.
    pub fn have(&self) -> Vec<bool> {
        self.have.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether chunks `start..end` are all verified and on disk.
    pub fn has_range(&self, start: usize, end: usize) -> bool {
        let have = self.have.lock().unwrap_or_else(|p| p.into_inner());
        end <= have.len() && have[start..end].iter().all(|h| *h)
    }

    /// Marks chunk `index` as verified and written.
    pub(crate) fn mark(&self, index: usize) {
        if let Some(h) = self
            .have
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(index)
        {
            *h = true;
        }
    }

    /// Reads `buf.len()` bytes at `offset` of the partial file.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, offset)
    }
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for sub in ["blobs", "partial", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        Ok(Self {
            root,
            tmp_counter: AtomicU64::new(0),
            partials: Mutex::new(HashMap::new()),
        })
    }

    /// Publishes a download in progress so its verified chunks can be served.
    pub(crate) fn register_partial(
        &self,
        manifest: BlobManifest,
        file: File,
        have: Vec<bool>,
    ) -> Arc<Partial> {
        let partial = Arc::new(Partial {
            manifest,
            file,
            have: Mutex::new(have),
        });
        self.lock_partials()
            .insert(partial.manifest.content_hash, partial.clone());
        partial
    }

    /// The download in progress of `hash`, if any.
    pub fn partial(&self, hash: &ContentHash) -> Option<Arc<Partial>> {
        self.lock_partials().get(hash).cloned()
    }

    /// Stops serving a download in progress (it completed, failed or was cancelled).
    pub(crate) fn unregister_partial(&self, hash: &ContentHash) {
        self.lock_partials().remove(hash);
    }

    fn lock_partials(&self) -> std::sync::MutexGuard<'_, HashMap<ContentHash, Arc<Partial>>> {
        self.partials.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of a complete blob (whether or not it exists).
    pub fn blob_path(&self, hash: &ContentHash) -> PathBuf {
        self.root.join("blobs").join(hex::encode(hash))
    }

    fn manifest_path(&self, hash: &ContentHash) -> PathBuf {
        self.root
            .join("blobs")
            .join(format!("{}.manifest", hex::encode(hash)))
    }

    pub(crate) fn partial_path(&self, hash: &ContentHash) -> PathBuf {
        self.root.join("partial").join(hex::encode(hash))
    }

    pub(crate) fn partial_manifest_path(&self, hash: &ContentHash) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{}.manifest", hex::encode(hash)))
    }

    /// Whether the complete blob is in the store.
    pub fn has(&self, hash: &ContentHash) -> bool {
        self.blob_path(hash).is_file() && self.manifest_path(hash).is_file()
    }

    /// Stores `data` under its `naming` name, returning the name.
    pub fn put_bytes(&self, data: &[u8], naming: Naming) -> Result<ContentHash, StoreError> {
        let manifest = BlobManifest::from_bytes(data, naming, DEFAULT_CHUNK_SIZE)
            .map_err(StoreError::Manifest)?;
        let hash = manifest.content_hash;
        if self.has(&hash) {
            return Ok(hash);
        }
        self.write_atomic(&self.blob_path(&hash), data)?;
        self.write_atomic(&self.manifest_path(&hash), &manifest.encode())?;
        Ok(hash)
    }

    /// Stores a copy of the file at `path` (streamed, not loaded whole) under its `naming`
    /// name, returning the name.
    pub fn put_file(&self, path: &Path, naming: Naming) -> Result<ContentHash, StoreError> {
        let mut src = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let tmp = self.tmp_path();
        let mut dst = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        let mut builder =
            ManifestBuilder::new(naming, DEFAULT_CHUNK_SIZE).map_err(StoreError::Manifest)?;
        let mut buf = vec![0u8; DEFAULT_CHUNK_SIZE as usize];
        loop {
            let n = read_full(&mut src, &mut buf).map_err(|e| StoreError::io(path, e))?;
            if n == 0 {
                break;
            }
            builder.update(&buf[..n]);
            dst.write_all(&buf[..n])
                .map_err(|e| StoreError::io(&tmp, e))?;
        }
        drop(dst);
        let manifest = builder.finish();
        let hash = manifest.content_hash;
        fs::rename(&tmp, self.blob_path(&hash)).map_err(|e| StoreError::io(&tmp, e))?;
        self.write_atomic(&self.manifest_path(&hash), &manifest.encode())?;
        Ok(hash)
    }

    /// The manifest of a complete blob, if stored.
    pub fn manifest(&self, hash: &ContentHash) -> Result<Option<BlobManifest>, StoreError> {
        let path = self.manifest_path(hash);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        BlobManifest::decode(&bytes, u64::MAX)
            .map(Some)
            .map_err(StoreError::Manifest)
    }

    /// Reads a complete blob into memory.
    pub fn read(&self, hash: &ContentHash) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(hash);
        fs::read(&path).map_err(|e| StoreError::io(&path, e))
    }

    /// Deletes a complete blob (its manifest first, so it is never half there).
    pub fn remove(&self, hash: &ContentHash) -> Result<(), StoreError> {
        for path in [self.manifest_path(hash), self.blob_path(hash)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Moves a finished, verified download into place.
    pub(crate) fn commit_partial(&self, manifest: &BlobManifest) -> Result<PathBuf, StoreError> {
        let hash = &manifest.content_hash;
        let dst = self.blob_path(hash);
        let src = self.partial_path(hash);
        self.write_atomic(&self.manifest_path(hash), &manifest.encode())?;
        fs::rename(&src, &dst).map_err(|e| StoreError::io(&src, e))?;
        let _ = fs::remove_file(self.partial_manifest_path(hash));
        Ok(dst)
    }

    /// Deletes a partial download (after it turned out to be unusable).
    pub(crate) fn discard_partial(&self, hash: &ContentHash) {
        let _ = fs::remove_file(self.partial_path(hash));
        let _ = fs::remove_file(self.partial_manifest_path(hash));
    }

    pub(crate) fn write_atomic(&self, dst: &Path, data: &[u8]) -> Result<(), StoreError> {
        let tmp = self.tmp_path();
        fs::write(&tmp, data).map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, dst).map_err(|e| StoreError::io(dst, e))
    }

    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bytes_and_put_file_agree() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let h1 = store.put_bytes(&data, Naming::Blake3).unwrap();
        assert_eq!(h1, stp_sdk::p2p::input_hash(&data));
        let src = dir.path().join("src.bin");
        fs::write(&src, &data).unwrap();
        let store2 = BlobStore::open(dir.path().join("other")).unwrap();
        let h2 = store2.put_file(&src, Naming::Blake3).unwrap();
        assert_eq!(h1, h2);
        let h3 = store2.put_file(&src, Naming::Sha256).unwrap();
        assert_eq!(h3, stp_sdk::p2p::sha256(&data));
        assert_eq!(store2.read(&h3).unwrap(), data);
        assert_eq!(store.manifest(&h1).unwrap(), store2.manifest(&h2).unwrap());
        assert_eq!(store2.read(&h2).unwrap(), data);
        assert!(store.has(&h1));
        assert!(!store.has(&[0; 32]));
        assert_eq!(store.manifest(&[0; 32]).unwrap(), None);
    }
}
