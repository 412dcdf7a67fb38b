// Model op conv-2d: NHWC int8 input [B, H, W, Cin], OHWI int8 filter [Cout, KH, KW, Cin],
// int32 bias [Cout] -> int32 [B, OH, OW, Cout]. Taps outside the input (padding) are
// skipped: they count as the input zero point. One invocation per output element; its
// loops make at most KH * (KW * (Cin + 1) + 1) + 1 passes (KH*KW*Cin <= 16,384, KH, KW <= 32).

struct Params {
    batch: u32,
    h: u32,
    w: u32,
    cin: u32,
    oh: u32,
    ow: u32,
    cout: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_top: u32,
    pad_left: u32,
    x_zp: i32,
    f_zp: i32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> f: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let i = flat_id(wg, nwg, lid);
    if (i >= params.batch * params.oh * params.ow * params.cout) {
        return;
    }
    let o = i % params.cout;
    let ox = (i / params.cout) % params.ow;
    let oy = (i / (params.cout * params.ow)) % params.oh;
    let b = i / (params.cout * params.ow * params.oh);
    var acc = bias[o];
    for (var dy = 0u; dy < params.kh; dy++) {
        // In padded coordinates; the tap is inside when pad <= coordinate < pad + size.
        let py = oy * params.stride_h + dy;
        for (var dx = 0u; dx < params.kw; dx++) {
            let px = ox * params.stride_w + dx;
            let inside = py >= params.pad_top && py < params.pad_top + params.h
                && px >= params.pad_left && px < params.pad_left + params.w;
            if (inside) {
                let xi = ((b * params.h + (py - params.pad_top)) * params.w + (px - params.pad_left)) * params.cin;
                let fi = ((o * params.kh + dy) * params.kw + dx) * params.cin;
                for (var c = 0u; c < params.cin; c++) {
                    let xv = sext_byte(x[(xi + c) >> 2u], xi + c) - params.x_zp;
                    let fv = sext_byte(f[(fi + c) >> 2u], fi + c) - params.f_zp;
                    acc += xv * fv;
                }
            }
        }
    }
    out[i] = acc;
}
