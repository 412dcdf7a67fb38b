// Model op requantize: int32 -> int8, clamp(mbqm(acc) clamped to +-2^16, + zp, act range).
// One invocation per output word (four int8 values), so no two invocations share a word.

struct Params {
    count: u32,
    multiplier: i32,
    shift: u32,
    zp: i32,
    act_min: i32,
    act_max: i32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> acc: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

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
            let scaled = clamp(mbqm(acc[e], params.multiplier, params.shift), -65536i, 65536i);
            let v = clamp(scaled + params.zp, params.act_min, params.act_max);
            packed |= (bitcast<u32>(v) & 0xffu) << (8u * j);
        }
    }
    out[word] = packed;
}
