//! Neighbouring invocations under the loop meter. Mesa's software driver caps loop passes
//! per SIMD group of invocations (8 here, up to 16 with 512-bit vectors), and a group
//! passes a loop while any of its lanes runs it: neighbours that spend their budgets in
//! different loops, or in different iterations of an outer loop, add up there. The budget
//! is sized so that 16 lanes of it stay under the cap; these shapes, each invocation
//! exactly at the budget, give the true values on Vulkan and GL (with the old budget of
//! 50,000, Mesa cut the two-neighbour shapes at 25,534 on both), and one pass more fails
//! as out of fuel on both.

use stp_sdk::kernels::custom::{CustomJob, LOOP_BUDGET};

use super::fuel::{assert_out_of_fuel, assert_true_values, job, step};

/// Invocations per workgroup in these shapes.
const WORKGROUP: u32 = 64;

/// `invocations` invocations over `loops` loops written one after another: invocation
/// `g` makes `n` iterations in loop `g % loops` and none in the others.
/// `o[2g] = iterations, o[2g + 1] = x`.
fn distinct_loops(loops: u32, n: u32, invocations: u32) -> CustomJob<'static> {
    let mut body = String::from("var c = 0u; var x = g.x;\n");
    for k in 0..loops {
        let (len, salt) = (format!("select(0u, {n}u, g.x % {loops}u == {k}u)"), k << 16);
        body.push_str(&format!(
            "for (var i = 0u; i < {len}; i++) {{ c += 1u; x = step(x, i ^ {salt}u); }}\n"
        ));
    }
    body.push_str("o[2u * g.x] = c; o[2u * g.x + 1u] = x;");
    job(&body, WORKGROUP, invocations / WORKGROUP, invocations * 2)
}

/// Passes of each invocation of `distinct_loops(loops, n, _)`: `n + 1` in its own loop,
/// one in each of the others.
fn distinct_loops_passes(loops: u32, n: u32) -> u32 {
    n + loops
}

/// `rows` outer iterations, each over a row of `n` iterations for the invocations whose
/// `g % rows` is that iteration, and an empty row for the others (a sparse kernel whose
/// rows differ in length). `o[2g] = iterations, o[2g + 1] = x`.
fn long_rows(rows: u32, n: u32, invocations: u32) -> CustomJob<'static> {
    let body = format!(
        "var c = 0u; var x = g.x;
         for (var r = 0u; r < {rows}u; r++) {{
             let len = select(0u, {n}u, r == g.x % {rows}u);
             for (var j = 0u; j < len; j++) {{ c += 1u; x = step(x, j ^ (r << 16u)); }}
         }}
         o[2u * g.x] = c; o[2u * g.x + 1u] = x;"
    );
    job(&body, WORKGROUP, invocations / WORKGROUP, invocations * 2)
}

/// Passes of each invocation of `long_rows(rows, n, _)`: `rows + 1` of the outer loop,
/// `n + 1` in the long row and one in each empty row, and one for the inner loop that the
/// outer loop's last pass skips.
fn long_rows_passes(rows: u32, n: u32) -> u32 {
    (rows + 1) + (n + 1) + (rows - 1) + 1
}

/// What both shapes compute: invocation `g` steps its `x` `n` times, salted by its own loop
/// or row `g % ways`.
fn expected(ways: u32, n: u32, invocations: u32) -> Vec<u32> {
    (0..invocations)
        .flat_map(|g| {
            let salt = (g % ways) << 16;
            [n, (0..n).fold(g, |x, i| step(x, i ^ salt))]
        })
        .collect()
}

/// The largest `n` whose invocations stay within the budget.
fn at_budget(passes: fn(u32, u32) -> u32, ways: u32) -> u32 {
    let n = LOOP_BUDGET - passes(ways, 0);
    assert_eq!(passes(ways, n), LOOP_BUDGET);
    n
}

#[test]
fn neighbours_looping_in_different_loops_give_the_true_values_at_the_budget() {
    let n = at_budget(distinct_loops_passes, 2);
    assert_true_values(
        "neighbours in two loops, at the budget",
        &distinct_loops(2, n, WORKGROUP),
        &expected(2, n, WORKGROUP),
    );
    assert_out_of_fuel(
        "neighbours in two loops, one pass over",
        &distinct_loops(2, n + 1, WORKGROUP),
    );
    // The shape that Mesa cut at 25,534 within the old budget of 50,000.
    assert_out_of_fuel(
        "neighbours in two loops of 40,000",
        &distinct_loops(2, 40_000, WORKGROUP),
    );
}

#[test]
fn neighbours_with_long_rows_in_different_outer_iterations_give_the_true_values() {
    let n = at_budget(long_rows_passes, 2);
    assert_true_values(
        "long rows at different times, at the budget",
        &long_rows(2, n, WORKGROUP),
        &expected(2, n, WORKGROUP),
    );
    assert_out_of_fuel(
        "long rows at different times, one pass over",
        &long_rows(2, n + 1, WORKGROUP),
    );
    assert_out_of_fuel(
        "long rows of 40,000 at different times",
        &long_rows(2, 40_000, WORKGROUP),
    );
}

/// The worst case for a group of up to 16: every lane spends the whole budget in a loop
/// of its own, so the group passes through 16 budgets one after another (16 x 3,985 =
/// 63,760 passes with 16 lanes, 8 x 3,985 + 8 = 31,888 with 8).
#[test]
fn sixteen_neighbours_in_sixteen_loops_at_the_full_budget_give_the_true_values() {
    let n = at_budget(distinct_loops_passes, 16);
    assert_true_values(
        "256 invocations over 16 loops, at the budget",
        &distinct_loops(16, n, 256),
        &expected(16, n, 256),
    );
    assert_out_of_fuel(
        "256 invocations over 16 loops, one pass over",
        &distinct_loops(16, n + 1, 256),
    );
}

/// Every one of 256 invocations spends the whole budget in a loop of its own (a module of
/// 256 loops: compiling it takes Mesa about 15 s per backend).
#[test]
fn every_invocation_in_a_loop_of_its_own_at_the_full_budget_gives_the_true_values() {
    let n = at_budget(distinct_loops_passes, 256);
    assert_true_values(
        "256 invocations over 256 loops, at the budget",
        &distinct_loops(256, n, 256),
        &expected(256, n, 256),
    );
}

/// The same worst case with one inner loop: each of 16 neighbours has its long row in a
/// different one of 16 outer iterations.
#[test]
fn every_invocation_with_its_long_row_in_a_different_outer_iteration_gives_the_true_values() {
    let n = at_budget(long_rows_passes, 16);
    assert_true_values(
        "256 invocations, 16 rows, at the budget",
        &long_rows(16, n, 256),
        &expected(16, n, 256),
    );
    assert_out_of_fuel(
        "256 invocations, 16 rows, one pass over",
        &long_rows(16, n + 1, 256),
    );
}
