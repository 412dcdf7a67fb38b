//! Dispatches run back to back on the device: each step's output stays in a device buffer
//! (a slot) that later steps bind in place of uploaded bytes, everything goes in one
//! submission, and only the slots asked for are read back. For trusted (unmetered) kernels
//! such as a model's ops: one upload of the input and constants, one read-back of the
//! outputs, whatever the number of ops.

use std::time::{Duration, Instant};

use stp_sdk::kernels::DispatchPlan;

use super::gpu::GpuRuntime;
use super::{ExecError, Result};

/// One dispatch of a chain.
#[derive(Debug)]
pub struct Step<'a> {
    /// The dispatch; its buffers at bound slots are ignored (their bytes may be empty).
    pub plan: DispatchPlan<'a>,
    /// Per binding: the slot whose buffer is bound instead of the plan's bytes.
    pub bound: Vec<Option<usize>>,
    /// The slot the output buffer becomes. A slot written before is written again (its
    /// buffer reused when large enough): give a slot to a later step only once no later
    /// step reads what it holds.
    pub output_slot: usize,
}

fn chain_error(message: impl Into<String>) -> ExecError {
    ExecError::Gpu {
        message: message.into(),
    }
}

impl GpuRuntime {
    /// Runs `steps` in order in one submission and returns the first `len` bytes of each
    /// `(slot, len)` of `reads`, and the device time of it all (compilation excluded).
    pub fn run_chain(
        &mut self,
        steps: &[Step<'_>],
        reads: &[(usize, u64)],
    ) -> Result<(Vec<Vec<u8>>, Duration)> {
        let mut pipelines = Vec::with_capacity(steps.len());
        for step in steps {
            self.check_limits(&step.plan)?;
            let cached = self.pipeline(&step.plan)?;
            if cached.fuel_layout.is_some() {
                return Err(chain_error("a metered kernel cannot run in a chain"));
            }
            pipelines.push(cached);
        }
        let started = Instant::now();
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut slots: Vec<Option<wgpu::Buffer>> = Vec::new();
        let mut encoder = self.device.create_command_encoder(&Default::default());
        for (step, cached) in steps.iter().zip(&pipelines) {
            let plan = &step.plan;
            let mut buffers = Vec::with_capacity(plan.buffers.len());
            for (i, (decl, init)) in plan.bindings.iter().zip(&plan.buffers).enumerate() {
                let output = i == plan.output_index;
                let buffer = if let Some(slot) = step.bound.get(i).copied().flatten() {
                    slots.get(slot).cloned().flatten().ok_or_else(|| {
                        chain_error(format!("slot {slot} is bound before it is written"))
                    })?
                } else {
                    // The output slot's buffer is written again when it is large enough
                    // (its contents are dead: the caller reuses a slot only then).
                    let free = output.then(|| slots.get(step.output_slot).cloned().flatten());
                    match free.flatten().filter(|b| b.size() >= init.size) {
                        Some(buffer) => buffer,
                        None => self.buffer(decl.kind, init, output)?,
                    }
                };
                buffers.push(buffer);
            }
            let bind_group = self.bind_group(plan, &buffers, &cached.layout);
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&cached.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                let [x, y, z] = plan.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
            if slots.len() <= step.output_slot {
                slots.resize(step.output_slot + 1, None);
            }
            slots[step.output_slot] = Some(buffers.swap_remove(plan.output_index));
        }
        let mut offsets = Vec::with_capacity(reads.len());
        let mut total = 0u64;
        for &(_, len) in reads {
            offsets.push(total);
            total += len.div_ceil(4).max(1) * 4;
        }
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stp-chain-readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        for (&(slot, len), &at) in reads.iter().zip(&offsets) {
            let source = slots
                .get(slot)
                .and_then(Option::as_ref)
                .ok_or_else(|| chain_error(format!("slot {slot} is read but never written")))?;
            encoder.copy_buffer_to_buffer(source, 0, &readback, at, len.div_ceil(4).max(1) * 4);
        }
        self.queue.submit([encoder.finish()]);
        let bytes = self.wait_read(&readback, scope, oom)?;
        let outputs = reads
            .iter()
            .zip(&offsets)
            .map(|(&(_, len), &at)| bytes[at as usize..(at + len) as usize].to_vec())
            .collect();
        Ok((outputs, started.elapsed()))
    }
}
