//! The executor through its worker process: results, typed errors for bad input, the
//! deadline kill, and that the executor keeps working after each failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stp_node::exec::{Backend, ExecError, ExecLimits, Executor};
use stp_sdk::kernels::custom::{CustomBuffer, CustomJob};
use stp_sdk::kernels::sample::{SampleSize, sample_input};
use stp_sdk::kernels::{
    self, BindingDecl, BindingKind, Builtin, KernelError, KernelId, find_kernel,
};

use stp_sdk::model::{ValidModel, job, synth};

use super::support::{OK_DEADLINE, config, gpu_executor};

fn matmul_job(seed: u64) -> (KernelId, Vec<u8>) {
    let size = SampleSize {
        m: 20,
        k: 33,
        n: 17,
        ..SampleSize::default()
    };
    (
        find_kernel("matmul-u32").unwrap().id,
        sample_input(Builtin::MatmulU32, &size, seed).unwrap(),
    )
}

/// Runs a good job and checks it against the CPU reference: the executor still works.
async fn assert_healthy(exec: &Executor) {
    let (kid, input) = matmul_job(5);
    let out = exec
        .run(&kid, &input, OK_DEADLINE)
        .await
        .expect("a good job after a failure");
    assert_eq!(out, kernels::cpu_reference(&kid, &input).unwrap());
}

fn storage(binding: u32, kind: BindingKind, size: u32, init: Vec<u8>) -> CustomBuffer<'static> {
    CustomBuffer {
        decl: BindingDecl { binding, kind },
        size,
        init: init.into(),
    }
}

/// A custom job: `out[i] = in[i] * 2 + 1` over 64 words.
fn doubling_job(wgsl: &str) -> CustomJob<'static> {
    let input: Vec<u8> = (0u32..64).flat_map(|v| v.to_le_bytes()).collect();
    CustomJob {
        wgsl: wgsl.to_owned().into(),
        entry_point: "main".into(),
        buffers: vec![
            storage(0, BindingKind::StorageRead, 256, input),
            storage(1, BindingKind::StorageReadWrite, 256, vec![]),
        ],
        output_binding: 1,
        workgroups: [1, 1, 1],
    }
}

const DOUBLING: &str = "
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    dst[g.x] = src[g.x] * 2u + 1u;
}";

async fn run_custom(
    exec: &Executor,
    job: &CustomJob<'_>,
    deadline: Duration,
) -> Result<Vec<u8>, ExecError> {
    let input = job.encode().expect("well-formed envelope");
    exec.run(&job.kernel_id(), &input, deadline).await
}

#[tokio::test]
async fn builtin_job_matches_cpu_reference_and_reports_adapter() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let adapter = exec.adapter_info();
    assert!(
        !adapter.cpu_reference,
        "a GPU executor must not run on the CPU reference"
    );
    assert!(!adapter.name.is_empty());
    assert_healthy(&exec).await;
}

#[tokio::test]
async fn custom_kernel_runs() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let out = run_custom(&exec, &doubling_job(DOUBLING), OK_DEADLINE)
        .await
        .unwrap();
    let want: Vec<u8> = (0u32..64).flat_map(|v| (v * 2 + 1).to_le_bytes()).collect();
    assert_eq!(out, want);
}

#[tokio::test]
async fn malformed_wgsl_is_a_typed_error_with_the_compiler_message() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let broken = DOUBLING.replace("src[g.x] * 2u", "src[g.x] * undefined_name");
    match run_custom(&exec, &doubling_job(&broken), OK_DEADLINE).await {
        Err(ExecError::InvalidWgsl { message }) => {
            assert!(
                message.contains("undefined_name"),
                "message names the problem: {message}"
            )
        }
        other => panic!("expected InvalidWgsl, got {other:?}"),
    }
    assert_healthy(&exec).await;
}

#[tokio::test]
async fn wrong_binding_layout_is_rejected() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    // The shader writes binding 1, but the envelope declares it read-only storage...
    let mut read_only = doubling_job(DOUBLING);
    read_only.buffers[0].decl.kind = BindingKind::StorageReadWrite;
    read_only.buffers[1].decl.kind = BindingKind::StorageRead;
    read_only.output_binding = 0;
    let err = run_custom(&exec, &read_only, OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::PipelineRejected { .. }), "{err:?}");
    // ...or leaves binding 0 out entirely.
    let mut missing = doubling_job(DOUBLING);
    missing.buffers.remove(0);
    let err = run_custom(&exec, &missing, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::PipelineRejected { .. }), "{err:?}");
    // A missing entry point is rejected the same way.
    let mut no_entry = doubling_job(DOUBLING);
    no_entry.entry_point = "nope".into();
    let err = run_custom(&exec, &no_entry, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::PipelineRejected { .. }), "{err:?}");
    assert_healthy(&exec).await;
}

#[tokio::test]
async fn oversized_dispatch_is_rejected_before_running() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let mut wide = doubling_job(DOUBLING);
    wide.workgroups = [70_000, 1, 1];
    let err = run_custom(&exec, &wide, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::DispatchTooLarge { .. }), "{err:?}");
    let mut many = doubling_job(DOUBLING);
    many.workgroups = [65_535, 65_535, 1];
    let err = run_custom(&exec, &many, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::DispatchTooLarge { .. }), "{err:?}");
    assert_healthy(&exec).await;
}

#[tokio::test]
async fn truncated_and_oversized_inputs_are_typed_errors() {
    let limits = ExecLimits {
        max_input_bytes: 64 << 10,
        max_output_bytes: 8 << 10,
        ..ExecLimits::default()
    };
    let Some(exec) = gpu_executor(limits).await else {
        return;
    };
    let (kid, input) = matmul_job(1);
    let err = exec
        .run(&kid, &input[..input.len() - 3], OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Kernel(KernelError::Truncated { .. })),
        "{err:?}"
    );
    let err = exec
        .run(&kid, &vec![0u8; 65 << 10], OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::InputTooLarge { .. }), "{err:?}");
    // 64x64 output = 16 KiB > 8 KiB; the header alone decides, nothing is allocated.
    let big = sample_input(
        Builtin::MatmulU32,
        &SampleSize {
            m: 64,
            k: 1,
            n: 64,
            ..SampleSize::default()
        },
        1,
    )
    .unwrap();
    let err = exec.run(&kid, &big, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::OutputTooLarge { .. }), "{err:?}");
    let err = exec
        .run(&KernelId([9; 32]), &input, OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Kernel(KernelError::UnknownKernel { .. })),
        "{err:?}"
    );
    // A custom buffer of 2 GiB declared with no data is refused before any allocation.
    let mut huge = doubling_job(DOUBLING);
    huge.buffers[0].size = 2 << 30;
    let err = run_custom(&exec, &huge, OK_DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, ExecError::DeviceMemoryTooLarge { .. }),
        "{err:?}"
    );
    assert_healthy(&exec).await;
}

/// A loop in every invocation of a large dispatch that only a hash collision ends. Metered,
/// each invocation stops after its loop budget (`LOOP_BUDGET` passes), but 268 million
/// invocations of it keep the device busy for hours. Only killing the worker process stops
/// it.
const RUNAWAY: &str = "
@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    var x = g.x;
    loop {
        x = x * 1664525u + 1013904223u;
        if (x == 0xdeadbeefu && o[0] == 12345u) { break; }
    }
    if (g.x == 0u && g.y == 0u) { o[0] = x; }
}";

#[allow(
    clippy::print_stderr,
    reason = "the test reports how long the kill took"
)]
#[tokio::test]
async fn runaway_shader_is_killed_at_the_deadline_and_the_executor_recovers() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let job = CustomJob {
        wgsl: RUNAWAY.into(),
        entry_point: "main".into(),
        buffers: vec![storage(0, BindingKind::StorageReadWrite, 4, vec![])],
        output_binding: 0,
        workgroups: [65_535, 64, 1],
    };
    let deadline = Duration::from_secs(3);
    let started = Instant::now();
    let err = run_custom(&exec, &job, deadline).await.unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, ExecError::DeadlineExceeded { .. }), "{err:?}");
    assert!(
        waited >= deadline,
        "returned before the deadline: {waited:?}"
    );
    eprintln!("deadline {deadline:?}: error returned after {waited:?}");
    assert_healthy(&exec).await;
}

#[tokio::test]
async fn concurrent_jobs_from_many_tasks_all_succeed() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let exec = Arc::new(exec);
    let tasks: Vec<_> = (0..8)
        .map(|seed| {
            let exec = exec.clone();
            tokio::spawn(async move {
                let (kid, input) = matmul_job(seed);
                let out = exec.run(&kid, &input, OK_DEADLINE).await.unwrap();
                assert_eq!(
                    out,
                    kernels::cpu_reference(&kid, &input).unwrap(),
                    "seed {seed}"
                );
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn cpu_backend_runs_builtins_and_refuses_custom_kernels() {
    let exec = Executor::new(config(Backend::Cpu, ExecLimits::default()))
        .await
        .unwrap();
    assert!(exec.adapter_info().cpu_reference);
    assert_healthy(&exec).await;
    let err = run_custom(&exec, &doubling_job(DOUBLING), OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Kernel(KernelError::NoCpuReference { .. })),
        "{err:?}"
    );
}

#[allow(clippy::print_stderr, reason = "the test reports the measured score")]
#[tokio::test]
async fn benchmark_score_is_verified_and_positive() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let score = exec.benchmark_score().await.unwrap();
    assert!(score.units_per_second > 0.0);
    assert_eq!(score.kernel, "matmul-u32");
    assert_eq!(score.adapter, exec.adapter_info());
    eprintln!(
        "benchmark: {:.3e} {}/s on {}",
        score.units_per_second, score.work_unit, score.adapter
    );
}

/// A synthetic model's job over `batch` samples: (kernel id, resolved input).
fn model_job(seed: u64, batch: u32) -> (KernelId, Vec<u8>) {
    let model = ValidModel::new(synth::mlp(&[64, 32, 10], seed).unwrap()).unwrap();
    let samples = synth::input(model.model(), batch, seed);
    let input = job::encode(&model.model().encode(), &samples);
    (job::kernel_id(&model.id()), input)
}

#[tokio::test]
async fn a_model_job_runs_in_the_worker_on_the_gpu_and_the_cpu_alike() {
    let (kid, input) = model_job(11, 37);
    let want = kernels::cpu_reference(&kid, &input).unwrap();
    assert_eq!(want.len(), 37 * (10 + 4), "int8 logits, then int32 classes");
    let cpu = Executor::new(config(Backend::Cpu, ExecLimits::default()))
        .await
        .unwrap();
    assert_eq!(cpu.run(&kid, &input, OK_DEADLINE).await.unwrap(), want);
    let Some(gpu) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    assert_eq!(gpu.run(&kid, &input, OK_DEADLINE).await.unwrap(), want);
}

#[tokio::test]
async fn a_model_job_naming_another_model_or_with_a_bad_batch_is_refused_before_it_runs() {
    let Some(exec) = gpu_executor(ExecLimits::default()).await else {
        return;
    };
    let (kid, input) = model_job(12, 4);
    let (other, _) = model_job(13, 4);
    let err = exec.run(&other, &input, OK_DEADLINE).await.unwrap_err();
    assert!(
        matches!(err, ExecError::Kernel(KernelError::KernelIdMismatch { .. })),
        "{err}"
    );
    assert!(err.is_input_error(), "{err}");
    let err = exec
        .run(&kid, &input[..input.len() - 1], OK_DEADLINE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecError::Kernel(KernelError::Model(_))),
        "{err}"
    );
    let small = ExecLimits {
        max_output_bytes: 8,
        ..ExecLimits::default()
    };
    let tight = gpu_executor(small).await.unwrap();
    let err = tight.run(&kid, &input, OK_DEADLINE).await.unwrap_err();
    assert!(matches!(err, ExecError::OutputTooLarge { .. }), "{err}");
    assert_healthy(&exec).await;
}
