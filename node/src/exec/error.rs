//! Errors of the executor.

use std::time::Duration;

use stp_sdk::kernels::KernelError;

/// Why a job could not be run. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No GPU adapter exists for the requested backends.
    #[error(
        "no GPU adapter found (backends: {backends}); install a Vulkan driver (e.g. Mesa's mesa-vulkan-drivers) or use --backend cpu / auto"
    )]
    NoAdapter {
        /// The backends that were searched.
        backends: String,
    },
    /// The adapter refused to create a device.
    #[error("could not open a device on {adapter}: {message}")]
    DeviceRequest {
        /// The adapter's name.
        adapter: String,
        /// wgpu's reason.
        message: String,
    },
    /// The input is larger than this executor accepts.
    #[error(
        "input is {size} bytes, more than the limit of {limit}; raise ExecLimits::max_input_bytes or split the job"
    )]
    InputTooLarge {
        /// Input size in bytes.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The job would produce more output than this executor accepts.
    #[error("output would be {size} bytes, more than the limit of {limit}")]
    OutputTooLarge {
        /// Output size in bytes.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The job's buffers would take more device memory than the limits allow.
    #[error("the job needs {size} bytes of device buffers, more than the limit of {limit}")]
    DeviceMemoryTooLarge {
        /// Bytes of all buffers together.
        size: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The dispatch is larger than the limits allow.
    #[error("dispatch of {workgroups:?} workgroups exceeds the limit ({limit}); shrink the job")]
    DispatchTooLarge {
        /// Workgroups requested in x, y, z.
        workgroups: [u32; 3],
        /// The limit that was exceeded, in words.
        limit: String,
    },
    /// The input does not fit the kernel (bad header, truncated, unknown kernel, ...).
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A model file or a model's input is invalid (`stp model`).
    #[error(transparent)]
    Model(#[from] stp_sdk::model::ModelError),
    /// The WGSL module failed to compile or validate.
    #[error("WGSL module rejected by the shader compiler: {message}")]
    InvalidWgsl {
        /// The compiler's messages, with line:column positions.
        message: String,
    },
    /// The pipeline could not be built: entry point missing or bindings not matching the shader.
    #[error(
        "compute pipeline rejected (check the entry point and the binding layout against the shader): {message}"
    )]
    PipelineRejected {
        /// wgpu's validation message.
        message: String,
    },
    /// A custom kernel has a loop with no `break`, `return` or `break if` of its own.
    #[error(
        "custom kernel rejected: the loop at line {line} of `{function}` has no break, return or `break if`, so it can never exit; give it an exit condition"
    )]
    EndlessLoop {
        /// The function holding the loop.
        function: String,
        /// Its line in the WGSL source.
        line: u32,
    },
    /// An invocation of a custom kernel used up its loop budget; the same happens on every
    /// GPU, so no provider commits a result for this job.
    #[error(
        "custom kernel ran out of fuel: an invocation needed more than {budget} loop passes (all its loops and called functions together; a pass is each start of a loop body, and each loop in code it skips), so it was stopped, identically on every GPU; do fewer iterations per invocation and dispatch more workgroups"
    )]
    OutOfFuel {
        /// Loop passes allowed per invocation ([`stp_sdk::kernels::custom::LOOP_BUDGET`]).
        budget: u32,
    },
    /// A buffer or dispatch exceeds what the device supports.
    #[error("{what} is {value}, more than this device supports ({limit})")]
    ExceedsDeviceLimit {
        /// Which quantity.
        what: String,
        /// Requested value.
        value: u64,
        /// The device limit.
        limit: u64,
    },
    /// The GPU failed while running the job (out of memory, device lost, map failure).
    #[error("GPU error while running the job: {message}")]
    Gpu {
        /// What wgpu reported.
        message: String,
    },
    /// The job did not finish before its deadline; the worker running it was killed.
    #[error(
        "job exceeded its deadline of {deadline:?}; the worker was killed and will be restarted for the next job"
    )]
    DeadlineExceeded {
        /// The deadline the job ran under.
        deadline: Duration,
    },
    /// The worker process could not be started.
    #[error("could not start the kernel worker `{program}`: {source}")]
    WorkerSpawn {
        /// The program that was started.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The worker process died or broke the protocol; it will be restarted for the next job.
    #[error("kernel worker failed: {message}; it will be restarted for the next job")]
    WorkerDied {
        /// What happened.
        message: String,
    },
    /// The GPU result differs from the CPU reference (a broken driver or GPU).
    #[error(
        "GPU output of {kernel} differs from the CPU reference; this device cannot be trusted with jobs"
    )]
    ReferenceMismatch {
        /// The kernel's name.
        kernel: String,
    },
}

impl ExecError {
    /// Whether the input (not the kernel or the machine) is at fault: it does not fit the
    /// kernel's layout or this executor's size limits. The same input fails everywhere.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Self::Kernel(_)
                | Self::Model(_)
                | Self::InputTooLarge { .. }
                | Self::DispatchTooLarge { .. }
        )
    }
}

/// Result type of the executor.
pub type Result<T, E = ExecError> = std::result::Result<T, E>;
