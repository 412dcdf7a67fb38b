//! Metered custom kernels: the loop shapes that Mesa's software driver silently cuts short
//! (65,535 loop passes per SIMD group of invocations) fail as `OutOfFuel` on Vulkan and on
//! GL alike; loops within the budget give the true values, the same bytes on both and the
//! values computed here in Rust; a loop that cannot exit is refused before it runs.
//! Neighbouring invocations that share a SIMD group: [`super::fuel_groups`]; the driver facts the budget rests on: [`super::fuel_driver`].

use stp_node::exec::gpu::GpuRuntime;
use stp_node::exec::{Backend, ExecError, ExecLimits, Executor};
use stp_sdk::kernels::custom::{CustomBuffer, CustomJob, LOOP_BUDGET};
use stp_sdk::kernels::{self, BindingDecl, BindingKind};

use super::support::{OK_DEADLINE, config, no_adapter, runtime};

/// One step of the value every test loop carries, so a skipped iteration changes it.
pub(crate) const STEP: &str =
    "fn step(x: u32, i: u32) -> u32 { return x * 1664525u + (1013904223u ^ i); }";

pub(crate) fn step(x: u32, i: u32) -> u32 {
    x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223 ^ i)
}

/// A custom job over one `array<u32>` output of `words` words.
pub(crate) fn job(
    body: &str,
    workgroup_size: u32,
    workgroups: u32,
    words: u32,
) -> CustomJob<'static> {
    let wgsl = format!(
        "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n{STEP}\n\
         @compute @workgroup_size({workgroup_size}) fn main(@builtin(global_invocation_id) g: vec3<u32>) {{\n{body}\n}}"
    );
    CustomJob {
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        buffers: vec![CustomBuffer {
            decl: BindingDecl {
                binding: 0,
                kind: BindingKind::StorageReadWrite,
            },
            size: words * 4,
            init: Vec::new().into(),
        }],
        output_binding: 0,
        workgroups: [workgroups, 1, 1],
    }
}

/// One invocation: `o[0] = c` iterations, `o[1] = x`.
fn one_loop(n: u32) -> CustomJob<'static> {
    let body = format!(
        "var c = 0u; var x = 1u;
         for (var i = 0u; i < {n}u; i++) {{ c += 1u; x = step(x, i); }}
         o[0] = c; o[1] = x;"
    );
    job(&body, 1, 1, 2)
}

fn one_loop_expected(n: u32) -> Vec<u32> {
    vec![n, (0..n).fold(1, step)]
}

/// Two loops of `n` one after the other: `o = [c1, c2, x]`.
fn two_loops(n: u32) -> CustomJob<'static> {
    let body = format!(
        "var c1 = 0u; var c2 = 0u; var x = 1u;
         for (var i = 0u; i < {n}u; i++) {{ c1 += 1u; x = step(x, i); }}
         for (var j = 0u; j < {n}u; j++) {{ c2 += 1u; x = step(x, j); }}
         o[0] = c1; o[1] = c2; o[2] = x;"
    );
    job(&body, 1, 1, 3)
}

fn two_loops_expected(n: u32) -> Vec<u32> {
    let x = (0..n).fold(1, step);
    vec![n, n, (0..n).fold(x, step)]
}

/// `a` outer iterations of `b` inner ones: `o = [outer, inner, x]`.
fn nested(a: u32, b: u32) -> CustomJob<'static> {
    let body = format!(
        "var outer = 0u; var inner = 0u; var x = 1u;
         for (var i = 0u; i < {a}u; i++) {{
             outer += 1u;
             for (var j = 0u; j < {b}u; j++) {{ inner += 1u; x = step(x, i ^ j); }}
         }}
         o[0] = outer; o[1] = inner; o[2] = x;"
    );
    job(&body, 1, 1, 3)
}

fn nested_expected(a: u32, b: u32) -> Vec<u32> {
    let x = (0..a).fold(1, |x, i| (0..b).fold(x, |x, j| step(x, i ^ j)));
    vec![a, a * b, x]
}

/// Loop passes of `nested(a, b)`: each loop's body starts once more than it iterates, and
/// the outer loop's last pass skips the inner loop (one pass).
fn nested_passes(a: u32, b: u32) -> u32 {
    (a + 1) + a * (b + 1) + 1
}

/// The loop lives in a helper, called twice: `o = [spin(n, 1), spin(n, 2)]`.
fn helper_loop(n: u32) -> CustomJob<'static> {
    let mut job = job(
        &format!("o[0] = spin({n}u, 1u); o[1] = spin({n}u, 2u);"),
        1,
        1,
        2,
    );
    job.wgsl = format!(
        "{}\nfn spin(n: u32, seed: u32) -> u32 {{ var x = seed; for (var i = 0u; i < n; i++) {{ x = step(x, i); }} return x; }}",
        job.wgsl
    )
    .into();
    job
}

fn helper_expected(n: u32) -> Vec<u32> {
    vec![(0..n).fold(1, step), (0..n).fold(2, step)]
}

/// A `loop` that breaks after `n` iterations: exactly `n + 1` passes. `o = [c, x]`.
fn counted_loop(n: u32) -> CustomJob<'static> {
    let body = format!(
        "var c = 0u; var x = 1u;
         loop {{ if c == {n}u {{ break; }} x = step(x, c); c += 1u; }}
         o[0] = c; o[1] = x;"
    );
    job(&body, 1, 1, 2)
}

/// 256 invocations, each with its own loop length near 3,000: `o[k] = x_k`.
fn many_invocations() -> CustomJob<'static> {
    let body = "var x = g.x;
         for (var i = 0u; i < 3000u + g.x; i++) { x = step(x, i); }
         o[g.x] = x;";
    job(body, 64, 4, 256)
}

fn many_expected() -> Vec<u32> {
    (0..256u32).map(|k| (0..3_000 + k).fold(k, step)).collect()
}

pub(crate) fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(crate) fn run(rt: &mut GpuRuntime, job: &CustomJob<'_>) -> Result<Vec<u8>, ExecError> {
    let input = job.encode().expect("well-formed envelope");
    let plan = kernels::plan(&job.kernel_id(), &input).expect("valid plan");
    rt.run(&plan).map(|(out, _)| out)
}

/// Runs `job` on Vulkan and on GL; `None` when skipping (no adapter outside CI).
fn on_both(job: &CustomJob<'_>) -> Option<[Result<Vec<u8>, ExecError>; 2]> {
    let mut vulkan = runtime("vulkan")?;
    let mut gl = runtime("gl")?;
    Some([run(&mut vulkan, job), run(&mut gl, job)])
}

pub(crate) fn assert_true_values(what: &str, job: &CustomJob<'_>, expected: &[u32]) {
    let Some([vulkan, gl]) = on_both(job) else {
        return;
    };
    let vulkan = vulkan.unwrap_or_else(|e| panic!("{what} on Vulkan: {e}"));
    let gl = gl.unwrap_or_else(|e| panic!("{what} on GL: {e}"));
    assert_eq!(vulkan, gl, "{what}: Vulkan and GL bytes differ");
    assert_eq!(
        words(&vulkan),
        expected,
        "{what}: not the values computed in Rust"
    );
}

pub(crate) fn assert_out_of_fuel(what: &str, job: &CustomJob<'_>) {
    let Some(results) = on_both(job) else {
        return;
    };
    for (backend, result) in ["Vulkan", "GL"].iter().zip(results) {
        match result {
            Err(ExecError::OutOfFuel { budget }) => assert_eq!(budget, LOOP_BUDGET),
            other => panic!(
                "{what} on {backend}: expected OutOfFuel, got {:?}",
                other.map(|b| words(&b))
            ),
        }
    }
}

#[test]
fn one_loop_of_70000_is_out_of_fuel_on_vulkan_and_gl() {
    assert_out_of_fuel("one loop of 70,000", &one_loop(70_000));
}

#[test]
fn two_loops_of_40000_are_out_of_fuel() {
    assert_out_of_fuel("two loops of 40,000", &two_loops(40_000));
}

#[test]
fn nested_300_by_300_is_out_of_fuel() {
    assert_out_of_fuel("nested 300x300", &nested(300, 300));
}

#[test]
fn helper_called_twice_past_the_budget_is_out_of_fuel() {
    // 2 x 2,001 passes: each call alone fits, together they do not.
    assert_out_of_fuel("helper 2 x 2,000", &helper_loop(2_000));
}

#[test]
fn loops_within_budget_give_the_true_values_on_vulkan_and_gl() {
    assert_true_values(
        "one loop of 3,000",
        &one_loop(3_000),
        &one_loop_expected(3_000),
    );
    assert_true_values("nested 60x60", &nested(60, 60), &nested_expected(60, 60));
    assert_true_values(
        "two loops of 1,900",
        &two_loops(1_900),
        &two_loops_expected(1_900),
    );
    assert_true_values(
        "helper 2 x 1,900",
        &helper_loop(1_900),
        &helper_expected(1_900),
    );
    assert_true_values("256 invocations", &many_invocations(), &many_expected());
    // Skipped loops cost one pass each: 3,202 and 3,903 passes.
    assert_true_values("a skipped branch", &skipped_branch(1_600), &[1_600, 0]);
    assert_true_values("an empty inner loop", &empty_inner(1_300), &[1_300, 0]);
}

/// `n` iterations, each skipping a branch that holds a loop (`o[1]` is 0, unknown to the
/// compiler): Mesa passes through that loop once per iteration, with no invocation in it.
fn skipped_branch(n: u32) -> CustomJob<'static> {
    let body = format!(
        "var c = 0u;
         for (var i = 0u; i < {n}u; i++) {{
             c += 1u;
             if o[1] == 12345u {{ for (var j = 0u; j < 2u; j++) {{ c += 7u; }} }}
         }}
         o[0] = c;"
    );
    job(&body, 1, 1, 2)
}

/// `n` iterations of an inner loop that runs 0 times (`o[1]` is 0) around another loop:
/// Mesa passes through the innermost loop once per iteration, as through skipped code.
fn empty_inner(n: u32) -> CustomJob<'static> {
    let body = format!(
        "var c = 0u;
         for (var i = 0u; i < {n}u; i++) {{
             c += 1u;
             for (var j = 0u; j < o[1]; j++) {{ for (var k = 0u; k < 1u; k++) {{ c += 7u; }} }}
         }}
         o[0] = c;"
    );
    job(&body, 1, 1, 2)
}

/// With only loop passes metered, Mesa's Vulkan driver cut these at 32,768 and 21,845 (GL
/// computed them): a loop an invocation skips costs a pass there too. Metered, such a loop
/// costs one pass, so both are past the budget (about 90,000 and 72,000 passes; just over
/// it: 4,402 and 4,203) and fail alike.
#[test]
fn loops_skipped_over_count_and_fail_alike() {
    assert_out_of_fuel("a skipped branch, 45,000", &skipped_branch(45_000));
    assert_out_of_fuel("an empty inner loop, 24,000", &empty_inner(24_000));
    assert_out_of_fuel("a skipped branch, 2,200", &skipped_branch(2_200));
    assert_out_of_fuel("an empty inner loop, 1,400", &empty_inner(1_400));
}

#[test]
fn the_budget_boundary_is_where_the_constant_says() {
    // `counted_loop(n)` makes n + 1 passes.
    let n = LOOP_BUDGET - 1;
    assert_true_values(
        "exactly the budget",
        &counted_loop(n),
        &[n, (0..n).fold(1, step)],
    );
    assert_out_of_fuel("one pass over the budget", &counted_loop(LOOP_BUDGET));
    // Nested loops count every pass of both: 21 + 20 * 198 + 1 = 3,982 fits, one more
    // inner iteration each (20 more passes) is two passes too many.
    assert_eq!(nested_passes(20, 197), LOOP_BUDGET - 18);
    assert_eq!(nested_passes(20, 198), LOOP_BUDGET + 2);
    assert_true_values(
        "nested under the budget",
        &nested(20, 197),
        &nested_expected(20, 197),
    );
    assert_out_of_fuel("nested two passes over", &nested(20, 198));
    // A skipped loop costs one pass: 2n + 2 for `skipped_branch(n)`, so budget / 2 - 1 is
    // exactly the budget and budget / 2 over it.
    let n = LOOP_BUDGET / 2 - 1;
    assert_true_values("skips at the budget", &skipped_branch(n), &[n, 0]);
    assert_out_of_fuel("skips over the budget", &skipped_branch(n + 1));
}

#[test]
fn passes_after_running_out_do_not_change_the_verdict() {
    // The fuel runs out deep in a nest; every loop reached afterwards ends on its first
    // pass, far below the driver's own cap, so the flag is set on every backend.
    let body = "var x = 1u;
        for (var a = 0u; a < 100u; a++) {
            for (var b = 0u; b < 100u; b++) {
                for (var c = 0u; c < 100u; c++) { x = step(x, a ^ b ^ c); }
            }
        }
        for (var d = 0u; d < 1000u; d++) { for (var e = 0u; e < 1000u; e++) { x = step(x, e); } }
        o[0] = x;";
    assert_out_of_fuel("exhausted in a 3-deep nest", &job(body, 1, 1, 1));
    // Exhausted in an inner loop, then leaving through a `return` inside the outer one.
    let body = "var x = 1u;
        for (var a = 0u; a < 100u; a++) {
            for (var b = 0u; b < 1000u; b++) { x = step(x, a ^ b); }
            if a == 5u { o[0] = x; return; }
        }
        o[0] = x;";
    assert_out_of_fuel("exhausted, then an early return", &job(body, 1, 1, 1));
}

#[test]
fn a_loop_without_exit_is_rejected_before_it_runs() {
    let job = job("var x = 1u; loop { x = step(x, 0u); o[0] = x; }", 1, 1, 1);
    let Some(results) = on_both(&job) else {
        return;
    };
    for result in results {
        match result {
            Err(ExecError::EndlessLoop { function, line }) => {
                assert_eq!((function.as_str(), line), ("main", 4));
            }
            other => panic!("expected EndlessLoop, got {other:?}"),
        }
    }
}

/// Through the worker process (what the provider daemon runs): `OutOfFuel` crosses the
/// process boundary typed, and the same executor then runs a kernel within budget.
#[tokio::test]
async fn executor_reports_out_of_fuel_typed_and_keeps_running() {
    for backends in ["vulkan", "gl"] {
        let mut cfg = config(Backend::Gpu, ExecLimits::default());
        cfg.wgpu_backends = Some(backends.to_owned());
        let exec = match Executor::new(cfg).await {
            Ok(exec) => exec,
            Err(e @ ExecError::NoAdapter { .. }) => return no_adapter(backends, &e),
            Err(e) => panic!("starting the {backends} executor failed: {e}"),
        };
        let over = one_loop(70_000);
        let input = over.encode().unwrap();
        let err = exec
            .run(&over.kernel_id(), &input, OK_DEADLINE)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExecError::OutOfFuel { budget } if budget == LOOP_BUDGET),
            "{backends}: {err:?}"
        );
        assert!(err.to_string().contains("more workgroups"), "{err}");
        let within = one_loop(3_000);
        let input = within.encode().unwrap();
        let out = exec
            .run(&within.kernel_id(), &input, OK_DEADLINE)
            .await
            .unwrap();
        assert_eq!(words(&out), one_loop_expected(3_000), "{backends}");
    }
}

/// `stp kernel run --help` and `stp kernel list` state the budget.
#[test]
fn cli_documents_the_loop_budget() {
    for args in [&["kernel", "run", "--help"][..], &["kernel", "list"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stp"))
            .args(args)
            .output()
            .expect("stp runs");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("{LOOP_BUDGET} loop passes")),
            "{args:?}: {text}"
        );
    }
}

/// `stp kernel run` of the 70,000 loop exits non-zero with the out-of-fuel sentence.
#[test]
fn cli_kernel_run_fails_with_the_out_of_fuel_sentence() {
    if runtime("vulkan").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("envelope");
    std::fs::write(&input, one_loop(70_000).encode().unwrap()).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["kernel", "run", "custom", "--backend", "gpu", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out"))
        .output()
        .expect("stp runs");
    assert_eq!(run.status.code(), Some(1), "an error exit, not a panic");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("ran out of fuel"), "{stderr}");
    assert!(
        stderr.contains(&format!("more than {LOOP_BUDGET} loop passes")),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "no output is written");
}
