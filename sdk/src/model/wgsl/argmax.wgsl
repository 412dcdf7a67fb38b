// Model op argmax: index of the first maximum of each C-element sample (int8 packed, or
// int32). One invocation per sample; its loop runs C <= 16,384 times.

struct Params {
    batch: u32,
    c: u32,
    is_i32: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

fn load(idx: u32) -> i32 {
    if (params.is_i32 != 0u) {
        return bitcast<i32>(x[idx]);
    }
    return sext_byte(x[idx >> 2u], idx);
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let row = flat_id(wg, nwg, lid);
    if (row >= params.batch) {
        return;
    }
    let base = row * params.c;
    var best = 0u;
    var best_v = load(base);
    for (var i = 1u; i < params.c; i++) {
        let v = load(base + i);
        if (v > best_v) {
            best = i;
            best_v = v;
        }
    }
    out[row] = i32(best);
}
