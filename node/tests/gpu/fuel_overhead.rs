//! What the loop meter costs: one budget-sized loop per invocation, compiled once from the
//! WGSL as written and once metered, each dispatched several times on the same device.
//! A measurement, not a check (ignored; run with `--run-ignored only` and `--nocapture`):
//! timings on a shared machine vary too much to assert.

use std::time::{Duration, Instant};

use futures::executor::block_on;
use stp_node::exec::meter;
use stp_sdk::kernels::custom::LOOP_BUDGET;

use super::fuel::STEP;

const INVOCATIONS: u32 = 65_536;
const RUNS: usize = 5;

/// Each invocation makes `LOOP_BUDGET - 1` iterations (exactly the budget in passes).
fn wgsl() -> String {
    let n = LOOP_BUDGET - 1;
    format!(
        "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n{STEP}\n\
         @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {{
             var x = g.x;
             for (var i = 0u; i < {n}u; i++) {{ x = step(x, i); }}
             o[g.x] = x;
         }}"
    )
}

fn device(backends: &str) -> Option<(wgpu::Device, wgpu::Queue)> {
    let backends = wgpu::Backends::from_comma_list(backends);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = block_on(instance.enumerate_adapters(backends))
        .into_iter()
        .next()?;
    block_on(adapter.request_device(&Default::default())).ok()
}

/// Median wall time of one dispatch (buffers, dispatch, read-back; compilation excluded)
/// of the kernel as written or metered, and its output.
fn time(device: &wgpu::Device, queue: &wgpu::Queue, metered: bool) -> (Duration, Vec<u8>) {
    let source = if metered {
        wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(
            meter::meter(&wgsl()).expect("the kernel meters"),
        ))
    } else {
        wgpu::ShaderSource::Wgsl(wgsl().into())
    };
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: None,
        source,
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let storage = |size, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE | usage,
            mapped_at_creation: false,
        })
    };
    let size = u64::from(INVOCATIONS) * 4;
    let mut times = Vec::with_capacity(RUNS);
    let mut output = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = storage(size, wgpu::BufferUsages::COPY_SRC);
        let flag = storage(4, wgpu::BufferUsages::empty());
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
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
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group(0, &out), &[]);
            if metered {
                pass.set_bind_group(meter::FUEL_GROUP, &group(meter::FUEL_GROUP, &flag), &[]);
            }
            pass.dispatch_workgroups(INVOCATIONS / 64, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&out, 0, &readback, 0, size);
        queue.submit([encoder.finish()]);
        readback.map_async(wgpu::MapMode::Read, .., |r| r.expect("read-back maps"));
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("the dispatch completes");
        output = readback.get_mapped_range(..).expect("mapped").to_vec();
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], output)
}

#[test]
#[ignore = "a measurement, not a check: run with --run-ignored only --nocapture"]
#[allow(clippy::print_stderr, reason = "the measurement is the test's output")]
fn meter_overhead_on_a_budget_sized_loop() {
    for backends in ["vulkan", "gl"] {
        let Some((device, queue)) = device(backends) else {
            eprintln!("SKIPPED: no {backends} adapter");
            continue;
        };
        // Warm-up, then alternate so that both see the same machine load.
        let _ = (time(&device, &queue, false), time(&device, &queue, true));
        let (mut plain, mut metered) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let (t, out) = time(&device, &queue, false);
            plain.push((t, out));
            let (t, out) = time(&device, &queue, true);
            metered.push((t, out));
        }
        assert_eq!(
            plain[0].1, metered[0].1,
            "{backends}: metering changed the output"
        );
        let median = |runs: &mut Vec<(Duration, Vec<u8>)>| {
            runs.sort_by_key(|(t, _)| *t);
            runs[runs.len() / 2].0
        };
        let (plain, metered) = (median(&mut plain), median(&mut metered));
        eprintln!(
            "{backends}: {INVOCATIONS} invocations x {LOOP_BUDGET} passes: unmetered {plain:?}, \
             metered {metered:?} ({:+.1} %)",
            (metered.as_secs_f64() / plain.as_secs_f64() - 1.0) * 100.0
        );
    }
}
