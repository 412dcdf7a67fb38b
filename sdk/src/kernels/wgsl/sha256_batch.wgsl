// sha256-batch: one SHA-256 per invocation over `count` messages of `len` bytes each.
// Messages are packed back to back (little-endian words); padding and the bit length are
// generated on the fly. The message schedule lives in a 16-word ring, so a block costs 80
// loop steps. Digests are stored as their big-endian byte sequence.

struct Params {
    count: u32,
    len: u32,
    row_invocations: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> data: array<u32>;
@group(0) @binding(2) var<storage, read_write> digests: array<u32>;

var<private> K: array<u32, 64> = array<u32, 64>(
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
);

fn rotr(x: u32, n: u32) -> u32 {
    return (x >> n) | (x << (32u - n));
}

// Byte `pos` of the padded message that starts at byte `base` of `data`.
fn padded_byte(base: u32, pos: u32) -> u32 {
    if (pos < params.len) {
        let at = base + pos;
        return (data[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu;
    }
    if (pos == params.len) {
        return 0x80u;
    }
    return 0u;
}

// Big-endian word `j` of block `blk` of the padded message (length words included).
fn message_word(base: u32, blk: u32, j: u32, last: u32) -> u32 {
    if (blk == last && j == 14u) {
        return params.len >> 29u;
    }
    if (blk == last && j == 15u) {
        return params.len << 3u;
    }
    let pos = blk * 64u + j * 4u;
    return (padded_byte(base, pos) << 24u) | (padded_byte(base, pos + 1u) << 16u)
        | (padded_byte(base, pos + 2u) << 8u) | padded_byte(base, pos + 3u);
}

fn byte_swap(x: u32) -> u32 {
    return (x << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let idx = gid.y * params.row_invocations + gid.x;
    if (idx >= params.count) {
        return;
    }
    let base = idx * params.len;
    let blocks = (params.len + 9u + 63u) / 64u;
    let last = blocks - 1u;
    var h = array<u32, 8>(0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                          0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u);
    var w: array<u32, 16>;
    for (var blk = 0u; blk < blocks; blk++) {
        for (var j = 0u; j < 16u; j++) {
            w[j] = message_word(base, blk, j, last);
        }
        var a = h[0]; var b = h[1]; var c = h[2]; var d = h[3];
        var e = h[4]; var f = h[5]; var g = h[6]; var hh = h[7];
        for (var i = 0u; i < 64u; i++) {
            let s = i & 15u;
            if (i >= 16u) {
                let w15 = w[(i + 1u) & 15u];
                let w2 = w[(i + 14u) & 15u];
                let s0 = rotr(w15, 7u) ^ rotr(w15, 18u) ^ (w15 >> 3u);
                let s1 = rotr(w2, 17u) ^ rotr(w2, 19u) ^ (w2 >> 10u);
                w[s] = w[s] + s0 + w[(i + 9u) & 15u] + s1;
            }
            let t1 = hh + (rotr(e, 6u) ^ rotr(e, 11u) ^ rotr(e, 25u)) + ((e & f) ^ (~e & g)) + K[i] + w[s];
            let t2 = (rotr(a, 2u) ^ rotr(a, 13u) ^ rotr(a, 22u)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    for (var j = 0u; j < 8u; j++) {
        digests[idx * 8u + j] = byte_swap(h[j]);
    }
}
