// matmul-u32: C = A x B over u32 with wrapping arithmetic, 16x16 tiles in workgroup memory.
// Each invocation computes one element of C; out-of-range threads load zeros and store
// nothing, so no buffer is ever read or written out of bounds.

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
@group(0) @binding(3) var<storage, read_write> c: array<u32>;

var<workgroup> tile_a: array<array<u32, 16>, 16>;
var<workgroup> tile_b: array<array<u32, 16>, 16>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    let tiles = (params.k + TILE - 1u) / TILE;
    var acc = 0u;
    for (var t = 0u; t < tiles; t++) {
        let ak = t * TILE + lid.x;
        var av = 0u;
        if (row < params.m && ak < params.k) {
            av = a[row * params.k + ak];
        }
        tile_a[lid.y][lid.x] = av;
        let bk = t * TILE + lid.y;
        var bv = 0u;
        if (bk < params.k && col < params.n) {
            bv = b[bk * params.n + col];
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
