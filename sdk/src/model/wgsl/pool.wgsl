// Model ops max-pool-2d / avg-pool-2d over int8 NHWC [B, H, W, C], no padding. One
// invocation per output word (four int8 values); each loops over <= 4 * 16 * 16 windows.
// Average: (s + n/2) / n if s > 0, else (s - n/2) / n, truncating (TFLite's int8 rule).

struct Params {
    batch: u32,
    h: u32,
    w: u32,
    c: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    average: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn pool_one(e: u32) -> i32 {
    let ch = e % params.c;
    let ox = (e / params.c) % params.ow;
    let oy = (e / (params.c * params.ow)) % params.oh;
    let b = e / (params.c * params.ow * params.oh);
    var best = -128i;
    var sum = 0i;
    for (var dy = 0u; dy < params.kh; dy++) {
        for (var dx = 0u; dx < params.kw; dx++) {
            let y = oy * params.sh + dy;
            let xx = ox * params.sw + dx;
            let idx = ((b * params.h + y) * params.w + xx) * params.c + ch;
            let v = sext_byte(x[idx >> 2u], idx);
            best = max(best, v);
            sum += v;
        }
    }
    if (params.average == 0u) {
        return best;
    }
    let n = i32(params.kh * params.kw);
    var avg: i32;
    if (sum > 0i) {
        avg = (sum + n / 2i) / n;
    } else {
        avg = (sum - n / 2i) / n;
    }
    return clamp(avg, -128i, 127i);
}

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let count = params.batch * params.oh * params.ow * params.c;
    let word = flat_id(wg, nwg, lid);
    if (word >= (count + 3u) / 4u) {
        return;
    }
    var packed = 0u;
    for (var j = 0u; j < 4u; j++) {
        let e = word * 4u + j;
        if (e < count) {
            packed |= (bitcast<u32>(pool_one(e)) & 0xffu) << (8u * j);
        }
    }
    out[word] = packed;
}
