//! The wgpu runtime: adapter choice, one device, a pipeline cache keyed by kernel id, and
//! a single generic path that turns a [`DispatchPlan`] into buffers, a dispatch and the
//! output bytes. Every wgpu call that can fail on job input runs inside an error scope, so
//! a bad shader becomes a typed error instead of a panic. Custom kernels run metered
//! ([`super::meter`]): their out-of-fuel flag is bound at group 1 and read back with the
//! output.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use stp_sdk::kernels::custom::LOOP_BUDGET;
use stp_sdk::kernels::{self, BindingKind, BufferInit, DispatchPlan, KernelId};
use stp_sdk::model::gpu::is_model_kernel;

use super::meter::{self, FUEL_BINDING};
use super::{AdapterSummary, ExecError, Result};

/// Bytes of the out-of-fuel flag (one `atomic<u32>`).
const FLAG_BYTES: u64 = 4;

/// Most pipelines kept; the cache is cleared when it is full (custom kernels can be many).
const PIPELINE_CACHE_CAP: usize = 64;

pub(super) struct CachedPipeline {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    /// The layout of the out-of-fuel flag's group, for metered (custom) kernels.
    pub(super) fuel_layout: Option<wgpu::BindGroupLayout>,
}

/// One device with its queue and compiled pipelines. Not thread-safe by design: the worker
/// process owns exactly one and runs jobs one at a time.
pub struct GpuRuntime {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    limits: wgpu::Limits,
    summary: AdapterSummary,
    pipelines: HashMap<KernelId, Arc<CachedPipeline>>,
}

/// Preference of an adapter: discrete GPUs first, CPU emulation last; Vulkan/Metal/DX12
/// before GL on equal devices.
fn rank(info: &wgpu::AdapterInfo) -> (u8, u8) {
    let device = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    let backend = match info.backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    };
    (device, backend)
}

pub(super) fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl GpuRuntime {
    /// Opens the best adapter among `backends` and creates the device.
    pub fn new(backends: wgpu::Backends) -> Result<Self> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapters = block_on(instance.enumerate_adapters(backends));
        for a in &adapters {
            tracing::debug!(adapter = ?a.get_info(), "found GPU adapter");
        }
        let adapter = adapters
            .into_iter()
            .min_by_key(|a| rank(&a.get_info()))
            .ok_or_else(|| ExecError::NoAdapter {
                backends: format!("{backends:?}"),
            })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("stp-exec"),
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = block_on(adapter.request_device(&descriptor)).map_err(|e| {
            ExecError::DeviceRequest {
                adapter: info.name.clone(),
                message: error_text(&e),
            }
        })?;
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            tracing::error!(error = %e, "uncaptured wgpu error");
        }));
        let summary = AdapterSummary::from_wgpu(&info);
        tracing::info!(adapter = %summary, "GPU device ready");
        Ok(Self {
            device,
            queue,
            limits,
            summary,
            pipelines: HashMap::new(),
        })
    }

    /// Opens a runtime on the given wgpu backends (a comma list such as `vulkan,gl`), or on
    /// `WGPU_BACKEND`; with neither, on Vulkan/Metal/DX12 first and on GL only if those
    /// have no adapter. Provider nodes, `stp model run` and the benchmarks choose alike.
    pub fn open(wgpu_backends: Option<&str>) -> Result<Self> {
        if let Some(list) = wgpu_backends {
            return Self::new(wgpu::Backends::from_comma_list(list));
        }
        if let Some(from_env) = wgpu::Backends::from_env() {
            return Self::new(from_env);
        }
        match Self::new(wgpu::Backends::PRIMARY) {
            Err(ExecError::NoAdapter { .. }) => Self::new(wgpu::Backends::SECONDARY),
            other => other,
        }
    }

    /// What was picked.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// Checks a plan against the device limits before anything is allocated.
    pub(super) fn check_limits(&self, plan: &DispatchPlan<'_>) -> Result<()> {
        let l = &self.limits;
        let too_big = |what: String, value: u64, limit: u64| {
            Err(ExecError::ExceedsDeviceLimit { what, value, limit })
        };
        let per_dim = l.max_compute_workgroups_per_dimension as u64;
        for (axis, &n) in ["x", "y", "z"].iter().zip(&plan.workgroups) {
            if n as u64 > per_dim {
                return too_big(format!("workgroup count in {axis}"), n as u64, per_dim);
            }
        }
        for (decl, buf) in plan.bindings.iter().zip(&plan.buffers) {
            let binding_limit = match decl.kind {
                BindingKind::Uniform => l.max_uniform_buffer_binding_size,
                _ => l.max_storage_buffer_binding_size,
            };
            let limit = binding_limit.min(l.max_buffer_size);
            if buf.size > limit {
                return too_big(
                    format!("buffer for binding {}", decl.binding),
                    buf.size,
                    limit,
                );
            }
        }
        Ok(())
    }

    /// Compiles (or fetches from the cache) the pipeline of a plan.
    pub(super) fn pipeline(&mut self, plan: &DispatchPlan<'_>) -> Result<Arc<CachedPipeline>> {
        if let Some(p) = self.pipelines.get(&plan.kernel) {
            return Ok(p.clone());
        }
        let built = Arc::new(self.build_pipeline(plan)?);
        if self.pipelines.len() >= PIPELINE_CACHE_CAP {
            self.pipelines.clear();
        }
        self.pipelines.insert(plan.kernel, built.clone());
        Ok(built)
    }

    fn build_pipeline(&self, plan: &DispatchPlan<'_>) -> Result<CachedPipeline> {
        let device = &self.device;
        // Built-ins and model kernels are trusted and bounded by their input limits; custom
        // kernels are metered.
        let trusted = kernels::builtin(&plan.kernel).is_some() || is_model_kernel(&plan.kernel);
        let source = if trusted {
            wgpu::ShaderSource::Wgsl(plan.wgsl.clone())
        } else {
            wgpu::ShaderSource::Naga(std::borrow::Cow::Owned(meter::meter(&plan.wgsl)?))
        };
        let metered = matches!(source, wgpu::ShaderSource::Naga(_));
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("stp-kernel"),
            source,
        });
        let info = block_on(module.get_compilation_info());
        let scope_error = block_on(scope.pop());
        let messages: Vec<String> = info
            .messages
            .iter()
            .filter(|m| m.message_type == wgpu::CompilationMessageType::Error)
            .map(|m| match &m.location {
                Some(loc) => format!("{}:{}: {}", loc.line_number, loc.line_position, m.message),
                None => m.message.clone(),
            })
            .collect();
        if !messages.is_empty() {
            return Err(ExecError::InvalidWgsl {
                message: messages.join("\n"),
            });
        }
        if let Some(e) = scope_error {
            return Err(ExecError::InvalidWgsl {
                message: error_text(&e),
            });
        }

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = plan
            .bindings
            .iter()
            .map(|b| wgpu::BindGroupLayoutEntry {
                binding: b.binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match b.kind {
                        BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                        BindingKind::StorageRead => {
                            wgpu::BufferBindingType::Storage { read_only: true }
                        }
                        BindingKind::StorageReadWrite => {
                            wgpu::BufferBindingType::Storage { read_only: false }
                        }
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("stp-kernel-bindings"),
            entries: &entries,
        });
        let fuel_layout = metered.then(|| fuel_layout(device));
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("stp-kernel-layout"),
            bind_group_layouts: &[Some(&layout), fuel_layout.as_ref()],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("stp-kernel-pipeline"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(&plan.entry_point),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = block_on(scope.pop()) {
            return Err(ExecError::PipelineRejected {
                message: error_text(&e),
            });
        }
        Ok(CachedPipeline {
            pipeline,
            layout,
            fuel_layout,
        })
    }

    /// A buffer for a binding of `kind` holding `init`; `copy_src` if it is read back.
    pub(super) fn buffer(
        &self,
        kind: BindingKind,
        init: &BufferInit<'_>,
        copy_src: bool,
    ) -> Result<wgpu::Buffer> {
        let mut usage = match kind {
            BindingKind::Uniform => wgpu::BufferUsages::UNIFORM,
            _ => wgpu::BufferUsages::STORAGE,
        };
        if copy_src {
            usage |= wgpu::BufferUsages::COPY_SRC;
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stp-kernel-buffer"),
            size: init.size,
            usage,
            mapped_at_creation: !init.data.is_empty(),
        });
        if !init.data.is_empty() {
            let mut view = buffer
                .get_mapped_range_mut(..)
                .map_err(|e| ExecError::Gpu {
                    message: error_text(&e),
                })?;
            view.slice(..init.data.len()).copy_from_slice(&init.data);
            drop(view);
            buffer.unmap();
        }
        Ok(buffer)
    }

    /// The group-0 bind group of `plan`'s bindings over `buffers` (in binding order).
    pub(super) fn bind_group(
        &self,
        plan: &DispatchPlan<'_>,
        buffers: &[wgpu::Buffer],
        layout: &wgpu::BindGroupLayout,
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = plan
            .bindings
            .iter()
            .zip(buffers)
            .map(|(decl, buffer)| wgpu::BindGroupEntry {
                binding: decl.binding,
                resource: buffer.as_entire_binding(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("stp-kernel-bind-group"),
            layout,
            entries: &entries,
        })
    }

    /// Waits for the submitted work, closes its two error scopes (validation, out of
    /// memory) and returns the bytes of `readback`.
    pub(super) fn wait_read(
        &self,
        readback: &wgpu::Buffer,
        scope: wgpu::ErrorScopeGuard,
        oom: wgpu::ErrorScopeGuard,
    ) -> Result<Vec<u8>> {
        let gpu = |e: &dyn std::error::Error| ExecError::Gpu {
            message: error_text(e),
        };
        let (tx, rx) = mpsc::sync_channel(1);
        readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        let polled = self.device.poll(wgpu::PollType::wait_indefinitely());
        let validation = block_on(scope.pop());
        let out_of_memory = block_on(oom.pop());
        if let Some(e) = validation.or(out_of_memory) {
            return Err(gpu(&e));
        }
        polled.map_err(|e| gpu(&e))?;
        let mapped = rx.recv().map_err(|_| ExecError::Gpu {
            message: "read-back mapping was never completed".to_owned(),
        })?;
        mapped.map_err(|e| gpu(&e))?;
        let bytes = readback.get_mapped_range(..).map_err(|e| gpu(&e))?.to_vec();
        readback.unmap();
        Ok(bytes)
    }

    /// Runs one planned job and returns its output and the time the device spent on it
    /// (buffer upload, dispatch and read-back; pipeline compilation excluded).
    pub fn run(&mut self, plan: &DispatchPlan<'_>) -> Result<(Vec<u8>, Duration)> {
        self.check_limits(plan)?;
        let cached = self.pipeline(plan)?;
        let started = Instant::now();
        let device = &self.device;
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);

        let mut buffers = Vec::with_capacity(plan.buffers.len());
        for (i, (decl, init)) in plan.bindings.iter().zip(&plan.buffers).enumerate() {
            buffers.push(self.buffer(decl.kind, init, i == plan.output_index)?);
        }
        let read_len = plan.output_len.div_ceil(4).max(1) * 4;
        // The out-of-fuel flag is read back right after the output, in the same mapping.
        let fuel = cached
            .fuel_layout
            .as_ref()
            .map(|layout| FuelFlag::new(device, layout));
        let flag_len = if fuel.is_some() { FLAG_BYTES } else { 0 };
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stp-kernel-readback"),
            size: read_len + flag_len,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = self.bind_group(plan, &buffers, &cached.layout);
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&cached.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            if let Some(fuel) = &fuel {
                pass.set_bind_group(meter::FUEL_GROUP, &fuel.bind_group, &[]);
            }
            let [x, y, z] = plan.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
        encoder.copy_buffer_to_buffer(&buffers[plan.output_index], 0, &readback, 0, read_len);
        if let Some(fuel) = &fuel {
            encoder.copy_buffer_to_buffer(&fuel.buffer, 0, &readback, read_len, FLAG_BYTES);
        }
        self.queue.submit([encoder.finish()]);

        let bytes = self.wait_read(&readback, scope, oom)?;
        let out_of_fuel = bytes[read_len as usize..].iter().any(|&b| b != 0);
        let output = bytes[..plan.output_len as usize].to_vec();
        if out_of_fuel {
            return Err(ExecError::OutOfFuel {
                budget: LOOP_BUDGET,
            });
        }
        Ok((output, started.elapsed()))
    }
}

/// The layout of the out-of-fuel flag's bind group.
fn fuel_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("stp-fuel-flag"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: FUEL_BINDING,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    })
}

/// One dispatch's out-of-fuel flag: a zeroed `u32` that a metered kernel sets to 1.
struct FuelFlag {
    buffer: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

impl FuelFlag {
    fn new(device: &wgpu::Device, layout: &wgpu::BindGroupLayout) -> Self {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("stp-fuel-flag"),
            size: FLAG_BYTES,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("stp-fuel-flag"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: FUEL_BINDING,
                resource: buffer.as_entire_binding(),
            }],
        });
        Self { buffer, bind_group }
    }
}
