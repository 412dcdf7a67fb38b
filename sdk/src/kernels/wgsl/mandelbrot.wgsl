// mandelbrot-fixed: escape-time Mandelbrot in Q5.27 fixed point, integers only.
// The 32x32 -> 64-bit product is built from 16-bit limbs so every backend (and the CPU
// reference) computes exactly the same bits.

struct Params {
    width: u32,
    height: u32,
    x_min: i32,
    y_min: i32,
    step: i32,
    max_iter: u32,
    _pad0: u32,
    _pad1: u32,
}

const FRAC_BITS: u32 = 27u;
const TWO: i32 = 268435456;   // 2.0 in Q5.27
const FOUR: i32 = 536870912;  // 4.0 in Q5.27

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> pixels: array<u32>;

fn abs_u32(a: i32) -> u32 {
    return select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
}

// sign(a*b) * ((|a| * |b|) >> 27), with the full 64-bit product.
fn fixed_mul(a: i32, b: i32) -> i32 {
    let x = abs_u32(a);
    let y = abs_u32(b);
    let x0 = x & 0xffffu; let x1 = x >> 16u;
    let y0 = y & 0xffffu; let y1 = y >> 16u;
    let p0 = x0 * y0; let p1 = x0 * y1; let p2 = x1 * y0; let p3 = x1 * y1;
    let mid = (p0 >> 16u) + (p1 & 0xffffu) + (p2 & 0xffffu);
    let lo = (mid << 16u) | (p0 & 0xffffu);
    let hi = p3 + (p1 >> 16u) + (p2 >> 16u) + (mid >> 16u);
    let magnitude = bitcast<i32>((hi << (32u - FRAC_BITS)) | (lo >> FRAC_BITS));
    return select(magnitude, -magnitude, (a < 0) != (b < 0));
}

fn escape_count(cx: i32, cy: i32) -> u32 {
    var x = 0i;
    var y = 0i;
    var n = 0u;
    while (n < params.max_iter) {
        if (x > TWO || x < -TWO || y > TWO || y < -TWO) {
            break;
        }
        let x2 = fixed_mul(x, x);
        let y2 = fixed_mul(y, y);
        if (x2 + y2 > FOUR) {
            break;
        }
        let xy = fixed_mul(x, y);
        y = xy + xy + cy;
        x = x2 - y2 + cx;
        n++;
    }
    return n;
}

fn palette(n: u32) -> u32 {
    if (n >= params.max_iter) {
        return 0xff000000u;
    }
    let t = (n * 8u) & 511u;
    let v = select(t, 511u - t, t > 255u);
    let r = v;
    let g = (v * v) >> 8u;
    let b = 255u - v / 2u;
    return r | (g << 8u) | (b << 16u) | (255u << 24u);
}

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= params.width || gid.y >= params.height) {
        return;
    }
    let cx = params.x_min + bitcast<i32>(gid.x) * params.step;
    let cy = params.y_min + bitcast<i32>(gid.y) * params.step;
    pixels[gid.y * params.width + gid.x] = palette(escape_count(cx, cy));
}
