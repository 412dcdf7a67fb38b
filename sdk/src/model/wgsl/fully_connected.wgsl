// Model op fully-connected: out[b][n] = bias[n] + sum_k (x[b][k] - x_zp) * (w[n][k] - w_zp),
// wrapping i32. One invocation per output element; its loop runs K <= 16,384 times.

struct Params {
    batch: u32,
    k: u32,
    n: u32,
    x_zp: i32,
    w_zp: i32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = flat_id(wg, nwg, lid);
    if (i >= params.batch * params.n) {
        return;
    }
    let row = i / params.n;
    let col = i % params.n;
    let xo = row * params.k;
    let wo = col * params.k;
    var acc = 0i;
    for (var kk = 0u; kk < params.k; kk++) {
        let xi = xo + kk;
        let wi = wo + kk;
        let xv = sext_byte(x[xi >> 2u], xi) - params.x_zp;
        let wv = sext_byte(w[wi >> 2u], wi) - params.w_zp;
        acc += xv * wv;
    }
    out[i] = bias[col] + acc;
}
