// matmul-i8: C (i32) = A (i8) x B (i8), 16x16 tiles in workgroup memory.
// A and B arrive as packed bytes (4 per u32 word, little-endian); buffers are padded to
// whole words and every read index is checked against M*K / K*N first.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    _pad: u32,
}

const TILE: u32 = 16u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<i32>;

var<workgroup> tile_a: array<array<i32, 16>, 16>;
var<workgroup> tile_b: array<array<i32, 16>, 16>;

// Sign-extends byte `idx & 3` of `word`: move it to the top, then shift back arithmetically.
fn sext_byte(word: u32, idx: u32) -> i32 {
    let shift = 24u - (idx & 3u) * 8u;
    return bitcast<i32>(word << shift) >> 24u;
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    let tiles = (params.k + TILE - 1u) / TILE;
    var acc = 0i;
    for (var t = 0u; t < tiles; t++) {
        let ak = t * TILE + lid.x;
        var av = 0i;
        if (row < params.m && ak < params.k) {
            let idx = row * params.k + ak;
            av = sext_byte(a[idx >> 2u], idx);
        }
        tile_a[lid.y][lid.x] = av;
        let bk = t * TILE + lid.y;
        var bv = 0i;
        if (bk < params.k && col < params.n) {
            let idx = bk * params.n + col;
            bv = sext_byte(b[idx >> 2u], idx);
        }
        tile_b[lid.y][lid.x] = bv;
        workgroupBarrier();
        for (var i = 0u; i < TILE; i++) {
            acc += tile_a[lid.y][i] * tile_b[i][lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.m && col < params.n) {
        c[row * params.n + col] = acc;
    }
}
