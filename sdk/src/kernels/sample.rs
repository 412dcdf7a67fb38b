//! Deterministic sample inputs for the built-in kernels (from a seed), so a user can try a
//! kernel, and benchmarks and tests share one generator. No `rand` dependency: SplitMix64.

use super::mandelbrot::Tile;
use super::matmul_u32::MatmulShape;
use super::{Builtin, Result, matmul_i8, matmul_u32, sha256_batch};

/// SplitMix64: a tiny, well-mixed, reproducible generator (not for secrets).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// The size of a sample input; each kernel reads the fields it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSize {
    /// Matmul rows of A.
    pub m: u32,
    /// Matmul inner dimension.
    pub k: u32,
    /// Matmul columns of B.
    pub n: u32,
    /// SHA-256 message count.
    pub count: u32,
    /// SHA-256 message length in bytes.
    pub len: u32,
    /// Mandelbrot width in pixels.
    pub width: u32,
    /// Mandelbrot height in pixels.
    pub height: u32,
    /// Mandelbrot iteration cap.
    pub max_iter: u32,
}

impl Default for SampleSize {
    fn default() -> Self {
        Self {
            m: 64,
            k: 64,
            n: 64,
            count: 1024,
            len: 64,
            width: 256,
            height: 256,
            max_iter: 256,
        }
    }
}

impl SampleSize {
    /// A short description of the fields `kernel` uses, e.g. `256x256x256`.
    pub fn describe(&self, kernel: Builtin) -> String {
        match kernel {
            Builtin::MatmulU32 | Builtin::MatmulI8 => format!("{}x{}x{}", self.m, self.k, self.n),
            Builtin::Sha256Batch => format!("{}x{}B", self.count, self.len),
            Builtin::Mandelbrot => format!("{}x{} it{}", self.width, self.height, self.max_iter),
        }
    }
}

/// A valid random input for `kernel` of the given size (the Mandelbrot tile is the classic
/// full view, centred on -0.75 + 0i; the seed does not change it).
pub fn sample_input(kernel: Builtin, size: &SampleSize, seed: u64) -> Result<Vec<u8>> {
    let mut rng = SplitMix64::new(seed);
    let shape = MatmulShape {
        m: size.m,
        k: size.k,
        n: size.n,
    };
    match kernel {
        Builtin::MatmulU32 => {
            shape.validate("matmul-u32")?;
            let mut words = |n: u64| (0..n).map(|_| rng.next_u64() as u32).collect::<Vec<_>>();
            let a = words(shape.m as u64 * shape.k as u64);
            let b = words(shape.k as u64 * shape.n as u64);
            matmul_u32::encode_input(shape, &a, &b)
        }
        Builtin::MatmulI8 => {
            shape.validate("matmul-i8")?;
            let a: Vec<i8> = rng
                .bytes(shape.m as usize * shape.k as usize)
                .into_iter()
                .map(|b| b as i8)
                .collect();
            let b: Vec<i8> = rng
                .bytes(shape.k as usize * shape.n as usize)
                .into_iter()
                .map(|b| b as i8)
                .collect();
            matmul_i8::encode_input(shape, &a, &b)
        }
        Builtin::Sha256Batch => {
            let total = size.count as u64 * size.len as u64;
            if size.count == 0
                || total > sha256_batch::MAX_DATA_BYTES
                || size.len > sha256_batch::MAX_MESSAGE_LEN
            {
                let reason = format!("count {} x len {} is out of range", size.count, size.len);
                return Err(super::KernelError::InvalidParams {
                    kernel: "sha256-batch",
                    reason,
                });
            }
            let data = rng.bytes(total as usize);
            let messages: Vec<&[u8]> = if size.len == 0 {
                vec![&[]; size.count as usize]
            } else {
                data.chunks_exact(size.len as usize).collect()
            };
            sha256_batch::encode_input(&messages)
        }
        Builtin::Mandelbrot => {
            Tile::centered(size.width, size.height, -0.75, 0.0, 3.0, size.max_iter).encode()
        }
    }
}
