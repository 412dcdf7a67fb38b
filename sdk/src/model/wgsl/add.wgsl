// Model op add: TFLite int8 add of two tensors of one shape. Per element:
// sa = mbqm((a - a_zp) << left_shift, a_scale), sb likewise, then
// out = clamp(clamp(mbqm(sa + sb, out_scale), +-2^16) + out_zp, act range).
// One invocation per output word (four int8 values).

struct Params {
    count: u32,
    a_zp: i32,
    b_zp: i32,
    left_shift: u32,
    a_multiplier: i32,
    a_shift: u32,
    b_multiplier: i32,
    b_shift: u32,
    multiplier: i32,
    shift: u32,
    zp: i32,
    act_min: i32,
    act_max: i32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn add_one(e: u32) -> i32 {
    let av = (sext_byte(a[e >> 2u], e) - params.a_zp) << params.left_shift;
    let bv = (sext_byte(b[e >> 2u], e) - params.b_zp) << params.left_shift;
    let sum = mbqm(av, params.a_multiplier, params.a_shift) + mbqm(bv, params.b_multiplier, params.b_shift);
    let scaled = clamp(mbqm(sum, params.multiplier, params.shift), -65536i, 65536i);
    return clamp(scaled + params.zp, params.act_min, params.act_max);
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let word = flat_id(wg, nwg, lid);
    if (word >= (params.count + 3u) / 4u) {
        return;
    }
    var packed = 0u;
    for (var j = 0u; j < 4u; j++) {
        let e = word * 4u + j;
        if (e < params.count) {
            packed |= (bitcast<u32>(add_one(e)) & 0xffu) << (8u * j);
        }
    }
    out[word] = packed;
}
