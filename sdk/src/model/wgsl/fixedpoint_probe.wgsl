// Test probe of the fixed-point helpers: per case (x, m, shift, _) writes the 64-bit
// product x*m as (lo, hi), srdhm(x, m), rdbpot(x, shift) and mbqm(x, m, shift).

struct Params {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cases: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = flat_id(wg, nwg, lid);
    if (i >= params.count) {
        return;
    }
    let x = cases[i * 4u];
    let m = cases[i * 4u + 1u];
    let shift = bitcast<u32>(cases[i * 4u + 2u]);
    let p = mul_i32_wide(x, m);
    out[i * 5u] = p.x;
    out[i * 5u + 1u] = p.y;
    out[i * 5u + 2u] = bitcast<u32>(srdhm(x, m));
    out[i * 5u + 3u] = bitcast<u32>(rdbpot(x, shift));
    out[i * 5u + 4u] = bitcast<u32>(mbqm(x, m, shift));
}
