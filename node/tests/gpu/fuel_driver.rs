//! The driver facts the loop budget rests on, and what the meter costs, measured on modules
//! dispatched directly through wgpu, unmetered or metered, without the runtime around them.
//!
//! - On Mesa's software driver the loop cap is 65,535 passes per SIMD group of 8 or more
//!   invocations, and a group passes each loop as many times as the lane that runs it
//!   longest: neighbours in different loops add up (checked; skipped on other adapters).
//! - The meter's overhead on a budget-sized loop (ignored: a measurement, not a check; run
//!   with `--run-ignored only --no-capture`): timings on a shared machine vary too much
//!   to assert.

use std::time::{Duration, Instant};

use futures::executor::block_on;
use stp_node::exec::meter;
use stp_sdk::kernels::custom::LOOP_BUDGET;

use super::fuel::{STEP, step, words};

/// Mesa's cap on the loop passes of one SIMD group, all its loops together.
const MESA_CAP: u32 = 65_535;

/// A device on `backends` and whether it is Mesa's software driver; `None` when absent.
fn device(backends: &str) -> Option<(wgpu::Device, wgpu::Queue, bool)> {
    let backends = wgpu::Backends::from_comma_list(backends);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .next()?;
    let mesa = adapter.get_info().name.contains("llvmpipe");
    let (device, queue) = block_on(adapter.request_device(&Default::default())).ok()?;
    Some((device, queue, mesa))
}

/// A module over `o: array<u32>` at group 0 (and, metered, the fuel flag at group 1).
struct Kernel {
    wgsl: String,
    metered: bool,
    invocations: u32,
}

impl Kernel {
    fn new(body: &str, invocations: u32, metered: bool) -> Self {
        let wgsl = format!(
            "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n{STEP}\n\
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {{\n{body}\n}}"
        );
        Self {
            wgsl,
            metered,
            invocations,
        }
    }

    fn pipeline(&self, device: &wgpu::Device) -> wgpu::ComputePipeline {
        let source = if self.metered {
            let module = meter::meter(&self.wgsl).expect("the kernel meters");
            wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(module))
        } else {
            wgpu::ShaderSource::Wgsl(self.wgsl.as_str().into())
        };
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source,
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    }

    /// One dispatch (buffers, dispatch, read-back): `o`'s first `invocations * words`
    /// words and the wall time.
    fn dispatch(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pipeline: &wgpu::ComputePipeline,
        words_each: u32,
    ) -> (Vec<u32>, Duration) {
        let started = Instant::now();
        let size = u64::from(self.invocations * words_each) * 4;
        let buffer = |size, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = wgpu::BufferUsages::STORAGE;
        let out = buffer(size, storage | wgpu::BufferUsages::COPY_SRC);
        let flag = buffer(4, storage);
        let readback = buffer(
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let group = |index: u32, buffer: &wgpu::Buffer| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(index),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            })
        };
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &group(0, &out), &[]);
            if self.metered {
                let fuel = group(meter::FUEL_GROUP, &flag);
                pass.set_bind_group(meter::FUEL_GROUP, &fuel, &[]);
            }
            pass.dispatch_workgroups(self.invocations / 64, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&out, 0, &readback, 0, size);
        queue.submit([encoder.finish()]);
        readback.map_async(wgpu::MapMode::Read, .., |r| r.expect("read-back maps"));
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("the dispatch completes");
        let output = words(&readback.get_mapped_range(..).expect("mapped"));
        (output, started.elapsed())
    }
}

/// 64 invocations over 8 loops, unmetered: invocation `g` makes `n` iterations in loop
/// `g % 8`. `o[g]` = its iterations.
fn eight_loops(n: u32) -> Kernel {
    let mut body = String::from("var c = 0u;\n");
    for k in 0..8 {
        body.push_str(&format!(
            "for (var i = 0u; i < select(0u, {n}u, g.x % 8u == {k}u); i++) {{ c += 1u; }}\n"
        ));
    }
    body.push_str("o[g.x] = c;");
    Kernel::new(&body, 64, false)
}

#[allow(clippy::print_stderr, reason = "a skipped check says so")]
#[test]
fn mesa_caps_the_passes_of_a_simd_group_all_its_lanes_loops_together() {
    for backends in ["vulkan", "gl"] {
        let Some((device, queue, true)) = device(backends) else {
            eprintln!("SKIPPED: no Mesa {backends} adapter, whose loop cap this checks");
            continue;
        };
        // A group of 8 or more lanes holds one lane per loop: 8 x (n + 1) passes.
        let run = |n| {
            let kernel = eight_loops(n);
            kernel
                .dispatch(&device, &queue, &kernel.pipeline(&device), 1)
                .0
        };
        assert_eq!(8 * (8_190 + 1), MESA_CAP - 7);
        assert_eq!(run(8_190), [8_190; 64], "{backends}: within the cap");
        // 8 x 8,193 passes: the last loop gets what the first seven left, 8,184 passes,
        // each an iteration (its exit pass is the one cut).
        let left = MESA_CAP - 7 * (8_192 + 1);
        let expected: Vec<u32> = (0..64)
            .map(|g| if g % 8 == 7 { left } else { 8_192 })
            .collect();
        assert_eq!(run(8_192), expected, "{backends}: past the cap");
    }
}

/// Loop bodies measured: the tests' step, and one multiply-add (where the meter's check is
/// the largest share of a pass).
const BODIES: [&str; 2] = ["x = step(x, i);", "x = x * 3u + i;"];

fn body_in_rust(body: &str) -> fn(u32, u32) -> u32 {
    match body {
        "x = step(x, i);" => step,
        _ => |x: u32, i: u32| x.wrapping_mul(3).wrapping_add(i),
    }
}

/// Each of 65,536 invocations makes `LOOP_BUDGET - 1` iterations (the budget in passes).
/// The count is read from the zeroed output, so that the compiler cannot prove the fuel
/// check never fires and drop it.
fn budget_loop(body: &str, metered: bool) -> Kernel {
    let n = LOOP_BUDGET - 1;
    let body = format!(
        "var x = g.x;
         let n = {n}u + o[g.x];
         for (var i = 0u; i < n; i++) {{ {body} }}
         o[g.x] = x;"
    );
    Kernel::new(&body, 65_536, metered)
}

/// Median unmetered and metered dispatch times of `body` (15 alternating runs each, after
/// one warm-up), outputs checked against Rust.
fn overhead(device: &wgpu::Device, queue: &wgpu::Queue, body: &str) -> [Duration; 2] {
    let kernels = [budget_loop(body, false), budget_loop(body, true)];
    let pipelines = kernels.each_ref().map(|k| k.pipeline(device));
    let f = body_in_rust(body);
    let expected: Vec<u32> = (0..65_536)
        .map(|g| (0..LOOP_BUDGET - 1).fold(g, f))
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..16 {
        for (which, (kernel, pipeline)) in kernels.iter().zip(&pipelines).enumerate() {
            let (out, took) = kernel.dispatch(device, queue, pipeline, 1);
            assert!(out == expected, "{body}: wrong output");
            if round > 0 {
                times[which].push(took);
            }
        }
    }
    times.map(|mut t| {
        t.sort();
        t[t.len() / 2]
    })
}

#[test]
#[ignore = "a measurement, not a check: run with --run-ignored only --no-capture"]
#[allow(clippy::print_stderr, reason = "the measurement is the test's output")]
fn meter_overhead_on_a_budget_sized_loop() {
    for backends in ["vulkan", "gl"] {
        let Some((device, queue, _)) = device(backends) else {
            eprintln!("SKIPPED: no {backends} adapter");
            continue;
        };
        for body in BODIES {
            let [plain, metered] = overhead(&device, &queue, body);
            eprintln!(
                "{backends} `{body}`: 65,536 invocations x {LOOP_BUDGET} passes, median of 15: \
                 unmetered {plain:?}, metered {metered:?} ({:+.1} %)",
                (metered.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
            );
        }
    }
}
