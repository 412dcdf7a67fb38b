//! Loop metering for custom kernels, so that every backend stops them at the same point.
//!
//! Mesa's software driver (what CI and GPU-less providers run) ends any loop silently once
//! a SIMD group of invocations (8 consecutive ones here) has made 65,535 loop passes, all
//! its loops together; a real GPU runs on. Unmetered, a long-looping custom kernel gives
//! different bytes on the two, and an honest provider is slashed. So before a custom module is compiled, [`meter`] rewrites its IR:
//!
//! - a `var<private>` fuel counter, set to [`LOOP_BUDGET`] at the start of each entry point;
//! - at the start of every loop body (every `Statement::Loop`, in every function), the
//!   counter is checked and decremented; when it is already zero, the invocation sets the
//!   out-of-fuel flag and breaks out. After that, each loop it reaches ends on its first
//!   pass, so an exhausted invocation makes only a few more passes;
//! - code an invocation skips is charged for the loops it holds, one pass each (calls
//!   included): the other side of an `if`, the other cases of a `switch`, the rest of the
//!   loop pass after a `break` or `continue`, the rest of the function after a `return`.
//!   Mesa runs invocations in lockstep and passes through such code with none of them in
//!   it, which costs a pass of its cap per loop (measured: a skipped loop in each iteration
//!   halved how far a loop got before the cut);
//! - the flag is an `atomic<u32>` storage buffer at `@group(1) @binding(0)`
//!   ([`FUEL_GROUP`], [`FUEL_BINDING`]): custom kernels may only bind group 0, so it never
//!   collides with theirs. The runtime adds it and reads it back after the dispatch.
//!   (Written instead where the entry point returns, from a private "dry" mark, it cost
//!   Mesa less at run time, +25-60 % over an unmetered tight loop instead of 2-4x, but
//!   its compile time exploded: 64 loops in 49 s instead of 1.2 s.)
//!
//! For one invocation the charges are at least what Mesa counts. For a SIMD group, every
//! loop instance the group runs (or passes through with no lane in it) has a lane that runs
//! it or is charged a pass for skipping it, and the group's passes through one instance are
//! the most any of its lanes makes there; so the group's passes are at most the sum of its
//! lanes' charges. [`LOOP_BUDGET`] is sized so that 16 lanes of it stay under the cap: a
//! kernel within budget computes the true values on every backend, whatever its
//! neighbours do, and one past it fails with [`ExecError::OutOfFuel`] on every backend.
//! Counting per group with subgroup operations would be tighter, but the verdict would
//! then depend on each GPU's subgroup width (8 on Mesa, 32 or 64 on real GPUs), and honest
//! providers on different GPUs would disagree; a per-invocation budget does not.
//! A loop that visibly never exits (no `break`, `return` or `break if` of its own) is
//! refused up front. Built-in kernels are not metered: their loops are bounded by their
//! input limits and checked against the CPU references.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{
    AddressSpace, BinaryOperator, Block, Expression, Function, GlobalVariable, Handle, Literal,
    MemoryDecorations, Module, ResourceBinding, Scalar, Span, Statement, StorageAccess, Type,
    TypeInner,
};
use stp_sdk::kernels::custom::LOOP_BUDGET;

use super::{ExecError, Result};

/// Bind group of the out-of-fuel flag (custom kernels bind only group 0).
pub const FUEL_GROUP: u32 = 1;
/// Binding of the out-of-fuel flag within [`FUEL_GROUP`].
pub const FUEL_BINDING: u32 = 0;

/// Parses and validates a custom WGSL module, refuses loops that cannot exit, and returns
/// the module with its loops metered (see the module docs).
pub fn meter(wgsl: &str) -> Result<Module> {
    let mut module = naga::front::wgsl::parse_str(wgsl).map_err(|e| ExecError::InvalidWgsl {
        message: e.emit_to_string(wgsl),
    })?;
    // Validated here, against the source, for messages with line and column; the device
    // validates the metered module again with its own capabilities.
    Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| ExecError::InvalidWgsl {
            message: e.emit_to_string(wgsl),
        })?;
    reject_reserved_group(&module)?;
    reject_endless_loops(&module, wgsl)?;
    instrument(&mut module);
    Ok(module)
}

/// Every function of a module with its name, entry points included.
fn functions(module: &Module) -> impl Iterator<Item = (&str, &Function)> {
    let helpers = module
        .functions
        .iter()
        .map(|(_, f)| (f.name.as_deref().unwrap_or("?"), f));
    let entries = module
        .entry_points
        .iter()
        .map(|ep| (ep.name.as_str(), &ep.function));
    helpers.chain(entries)
}

/// Custom kernels bind group 0 only; [`FUEL_GROUP`] and above are the runtime's.
fn reject_reserved_group(module: &Module) -> Result<()> {
    let reserved = module
        .global_variables
        .iter()
        .filter_map(|(_, g)| g.binding.filter(|b| b.group >= FUEL_GROUP).map(|b| (g, b)))
        .next();
    match reserved {
        Some((global, binding)) => Err(ExecError::PipelineRejected {
            message: format!(
                "`{}` is bound at @group({}); custom kernels bind @group(0) only (group {FUEL_GROUP} is reserved for the loop meter)",
                global.name.as_deref().unwrap_or("?"),
                binding.group
            ),
        }),
        None => Ok(()),
    }
}

fn reject_endless_loops(module: &Module, source: &str) -> Result<()> {
    for (name, function) in functions(module) {
        if let Some(span) = endless_loop(&function.body) {
            return Err(ExecError::EndlessLoop {
                function: name.to_owned(),
                line: span.location(source).line_number,
            });
        }
    }
    Ok(())
}

/// The span of the first loop in `block` (at any depth) that has no exit of its own.
fn endless_loop(block: &Block) -> Option<Span> {
    for (statement, span) in block.span_iter() {
        let found = match statement {
            Statement::Loop {
                body,
                continuing,
                break_if,
            } => {
                let exits = break_if.is_some() || exits(body, true) || exits(continuing, true);
                if !exits {
                    return Some(*span);
                }
                endless_loop(body).or_else(|| endless_loop(continuing))
            }
            Statement::Block(b) => endless_loop(b),
            Statement::If { accept, reject, .. } => {
                endless_loop(accept).or_else(|| endless_loop(reject))
            }
            Statement::Switch { cases, .. } => cases.iter().find_map(|c| endless_loop(&c.body)),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Whether `block` can leave the loop it belongs to: a `return` anywhere, or a `break`
/// that targets this loop (`breaks_here`: not inside a nested loop or switch).
fn exits(block: &Block, breaks_here: bool) -> bool {
    block.iter().any(|statement| match statement {
        Statement::Break => breaks_here,
        Statement::Return { .. } | Statement::Kill => true,
        Statement::Block(b) => exits(b, breaks_here),
        Statement::If { accept, reject, .. } => {
            exits(accept, breaks_here) || exits(reject, breaks_here)
        }
        Statement::Switch { cases, .. } => cases.iter().any(|c| exits(&c.body, false)),
        Statement::Loop {
            body, continuing, ..
        } => exits(body, false) || exits(continuing, false),
        _ => false,
    })
}

/// The two globals the metering adds.
#[derive(Clone, Copy)]
struct Globals {
    fuel: Handle<GlobalVariable>,
    flag: Handle<GlobalVariable>,
}

fn instrument(module: &mut Module) {
    let u32_ty = module.types.insert(
        Type {
            name: None,
            inner: TypeInner::Scalar(Scalar::U32),
        },
        Span::UNDEFINED,
    );
    let atomic_ty = module.types.insert(
        Type {
            name: None,
            inner: TypeInner::Atomic(Scalar::U32),
        },
        Span::UNDEFINED,
    );
    let mut global = |name: &str, space, binding, ty| {
        module.global_variables.append(
            GlobalVariable {
                name: Some(name.to_owned()),
                space,
                binding,
                ty,
                init: None,
                memory_decorations: MemoryDecorations::empty(),
            },
            Span::UNDEFINED,
        )
    };
    let globals = Globals {
        fuel: global("stp_fuel", AddressSpace::Private, None, u32_ty),
        flag: global(
            "stp_out_of_fuel",
            AddressSpace::Storage {
                access: StorageAccess::LOAD | StorageAccess::STORE,
            },
            Some(ResourceBinding {
                group: FUEL_GROUP,
                binding: FUEL_BINDING,
            }),
            atomic_ty,
        ),
    };
    let loops = StaticLoops::of(module);
    for (_, function) in module.functions.iter_mut() {
        meter_function(function, globals, &loops);
    }
    for entry in &mut module.entry_points {
        let fuel = meter_function(&mut entry.function, globals, &loops);
        let budget = entry.function.expressions.append(
            Expression::Literal(Literal::U32(LOOP_BUDGET)),
            Span::UNDEFINED,
        );
        let reset = Statement::Store {
            pointer: fuel,
            value: budget,
        };
        entry
            .function
            .body
            .splice(0..0, Block::from_vec(vec![reset]));
    }
}

/// How many loop statements a piece of code holds, calls included (what Mesa's lockstep
/// execution passes through once even when no invocation runs it).
struct StaticLoops {
    /// Per helper function, in arena order (a function calls only earlier ones).
    functions: Vec<u32>,
}

impl StaticLoops {
    fn of(module: &Module) -> Self {
        let mut loops = Self {
            functions: Vec::with_capacity(module.functions.len()),
        };
        for (_, function) in module.functions.iter() {
            let n = loops.block(&function.body);
            loops.functions.push(n);
        }
        loops
    }

    fn block(&self, block: &[Statement]) -> u32 {
        block
            .iter()
            .fold(0u32, |n, s| n.saturating_add(self.statement(s)))
    }

    fn statement(&self, statement: &Statement) -> u32 {
        match statement {
            Statement::Loop {
                body, continuing, ..
            } => 1u32
                .saturating_add(self.block(body))
                .saturating_add(self.block(continuing)),
            Statement::Block(b) => self.block(b),
            Statement::If { accept, reject, .. } => {
                self.block(accept).saturating_add(self.block(reject))
            }
            Statement::Switch { cases, .. } => cases
                .iter()
                .fold(0u32, |n, c| n.saturating_add(self.block(&c.body))),
            Statement::Call { function, .. } => {
                self.functions.get(function.index()).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// Loops that the rest of the code holds, from some point on: up to the end of the
/// innermost loop's pass (what a `break` or `continue` skips) and of the function (what a
/// `return` skips).
#[derive(Clone, Copy, Default)]
struct Tail {
    in_loop: u32,
    in_function: u32,
}

impl Tail {
    fn plus(self, loops: u32) -> Self {
        Self {
            in_loop: self.in_loop.saturating_add(loops),
            in_function: self.in_function.saturating_add(loops),
        }
    }
}

/// Handles, in one function's expression arena, that every check uses.
struct Shared {
    fuel: Handle<Expression>,
    flag: Handle<Expression>,
    zero: Handle<Expression>,
    one: Handle<Expression>,
}

/// What metering one function needs.
struct Meter<'a> {
    exprs: &'a mut naga::Arena<Expression>,
    shared: Shared,
    loops: &'a StaticLoops,
}

/// Meters every loop of `function`; returns its pointer to the fuel counter.
fn meter_function(
    function: &mut Function,
    globals: Globals,
    loops: &StaticLoops,
) -> Handle<Expression> {
    let exprs = &mut function.expressions;
    let mut add = |e| exprs.append(e, Span::UNDEFINED);
    let shared = Shared {
        fuel: add(Expression::GlobalVariable(globals.fuel)),
        flag: add(Expression::GlobalVariable(globals.flag)),
        zero: add(Expression::Literal(Literal::U32(0))),
        one: add(Expression::Literal(Literal::U32(1))),
    };
    let fuel = shared.fuel;
    let mut meter = Meter {
        exprs: &mut function.expressions,
        shared,
        loops,
    };
    meter.block(&mut function.body, Tail::default());
    fuel
}

impl Meter<'_> {
    /// Meters `block`, where `tail` is what follows it.
    fn block(&mut self, block: &mut Block, tail: Tail) {
        let statements: Vec<(Statement, Span)> = std::mem::take(block).span_into_iter().collect();
        // rest[i]: loops in the statements after the i-th.
        let mut rest = vec![0u32; statements.len() + 1];
        for (i, (s, _)) in statements.iter().enumerate().rev() {
            rest[i] = rest[i + 1].saturating_add(self.loops.statement(s));
        }
        for (i, (mut statement, span)) in statements.into_iter().enumerate() {
            let here = tail.plus(rest[i + 1]);
            match &mut statement {
                Statement::Loop {
                    body, continuing, ..
                } => {
                    let cont = self.loops.block(continuing);
                    let pass = Tail {
                        in_loop: cont,
                        in_function: here.in_function.saturating_add(cont),
                    };
                    self.block(body, pass);
                    self.block(continuing, Tail { in_loop: 0, ..here });
                    let check = self.pass_check();
                    body.splice(0..0, check);
                }
                Statement::Block(b) => self.block(b, here),
                Statement::If { accept, reject, .. } => {
                    let (in_accept, in_reject) =
                        (self.loops.block(accept), self.loops.block(reject));
                    self.block(accept, here);
                    self.block(reject, here);
                    self.charge_at_start(accept, in_reject);
                    self.charge_at_start(reject, in_accept);
                }
                Statement::Switch { cases, .. } => {
                    let own: Vec<u32> = cases.iter().map(|c| self.loops.block(&c.body)).collect();
                    let all = own.iter().fold(0u32, |n, &l| n.saturating_add(l));
                    for (case, own) in cases.iter_mut().zip(own) {
                        self.block(&mut case.body, here);
                        self.charge_at_start(&mut case.body, all - own);
                    }
                }
                Statement::Break | Statement::Continue => {
                    block.extend_block(self.charge(here.in_loop));
                }
                Statement::Return { .. } => block.extend_block(self.charge(here.in_function)),
                _ => {}
            }
            block.push(statement, span);
        }
    }

    fn charge_at_start(&mut self, block: &mut Block, loops: u32) {
        let charge = self.charge(loops);
        block.splice(0..0, charge);
    }

    /// At the start of a loop body: `if (fuel == 0u) { atomicStore(&flag, 1u); break; }
    /// fuel = fuel - 1u;`
    fn pass_check(&mut self) -> Block {
        let start = self.exprs.len();
        let fuel = self.load_fuel();
        let empty = self.binary(BinaryOperator::Equal, fuel, self.shared.zero);
        let compared = self.exprs.range_from(start);
        let start = self.exprs.len();
        let left = self.binary(BinaryOperator::Subtract, fuel, self.shared.one);
        let decremented = self.exprs.range_from(start);
        let out_of_fuel = Block::from_vec(vec![self.set_flag(), Statement::Break]);
        Block::from_vec(vec![
            Statement::Emit(compared),
            Statement::If {
                condition: empty,
                accept: out_of_fuel,
                reject: Block::new(),
            },
            Statement::Emit(decremented),
            self.store_fuel(left),
        ])
    }

    /// `loops` passes for code skipped over (none when `loops` is 0):
    /// `if (fuel < n) { atomicStore(&flag, 1u); fuel = 0u; } else { fuel = fuel - n; }`
    /// The loops reached afterwards then end on their first pass.
    fn charge(&mut self, loops: u32) -> Block {
        if loops == 0 {
            return Block::new();
        }
        let n = self
            .exprs
            .append(Expression::Literal(Literal::U32(loops)), Span::UNDEFINED);
        let start = self.exprs.len();
        let fuel = self.load_fuel();
        let short = self.binary(BinaryOperator::Less, fuel, n);
        let compared = self.exprs.range_from(start);
        let start = self.exprs.len();
        let left = self.binary(BinaryOperator::Subtract, fuel, n);
        let decremented = self.exprs.range_from(start);
        let out_of_fuel = Block::from_vec(vec![self.set_flag(), self.store_fuel(self.shared.zero)]);
        let spend = Block::from_vec(vec![Statement::Emit(decremented), self.store_fuel(left)]);
        Block::from_vec(vec![
            Statement::Emit(compared),
            Statement::If {
                condition: short,
                accept: out_of_fuel,
                reject: spend,
            },
        ])
    }

    fn load_fuel(&mut self) -> Handle<Expression> {
        let pointer = self.shared.fuel;
        self.exprs
            .append(Expression::Load { pointer }, Span::UNDEFINED)
    }

    fn binary(
        &mut self,
        op: BinaryOperator,
        left: Handle<Expression>,
        right: Handle<Expression>,
    ) -> Handle<Expression> {
        self.exprs
            .append(Expression::Binary { op, left, right }, Span::UNDEFINED)
    }

    fn store_fuel(&self, value: Handle<Expression>) -> Statement {
        Statement::Store {
            pointer: self.shared.fuel,
            value,
        }
    }

    fn set_flag(&self) -> Statement {
        Statement::Store {
            pointer: self.shared.flag,
            value: self.shared.one,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n";

    fn kernel(body: &str) -> String {
        format!("{HEAD}@compute @workgroup_size(1) fn main() {{\n{body}\n}}")
    }

    fn loops(block: &Block) -> usize {
        block
            .iter()
            .map(|s| match s {
                Statement::Loop {
                    body, continuing, ..
                } => 1 + loops(body) + loops(continuing),
                Statement::Block(b) => loops(b),
                Statement::If { accept, reject, .. } => loops(accept) + loops(reject),
                Statement::Switch { cases, .. } => cases.iter().map(|c| loops(&c.body)).sum(),
                _ => 0,
            })
            .sum()
    }

    /// Loops whose body starts with the fuel check (an `If` whose accept block breaks).
    fn metered_loops(block: &Block) -> usize {
        block
            .iter()
            .map(|s| match s {
                Statement::Loop {
                    body, continuing, ..
                } => {
                    let checked = matches!(body.get(1), Some(Statement::If { accept, .. })
                        if matches!(accept.last(), Some(Statement::Break)));
                    usize::from(checked) + metered_loops(body) + metered_loops(continuing)
                }
                Statement::Block(b) => metered_loops(b),
                Statement::If { accept, reject, .. } => {
                    metered_loops(accept) + metered_loops(reject)
                }
                Statement::Switch { cases, .. } => {
                    cases.iter().map(|c| metered_loops(&c.body)).sum()
                }
                _ => 0,
            })
            .sum()
    }

    #[test]
    fn every_loop_in_every_function_is_metered_and_the_module_still_validates() {
        let src = format!(
            "{HEAD}fn helper(n: u32) -> u32 {{ var s = 0u; for (var i = 0u; i < n; i++) {{ s += i; }} return s; }}
@compute @workgroup_size(1) fn main() {{
    var a = 0u;
    while (a < 10u) {{ for (var j = 0u; j < 3u; j++) {{ a += 1u; }} }}
    loop {{ a += helper(a); if (a > 100u) {{ break; }} continuing {{ a += 1u; }} }}
    switch a {{ default {{ for (var k = 0u; k < 2u; k++) {{ a += k; }} }} }}
    o[0] = a;
}}"
        );
        let module = meter(&src).unwrap();
        let mut total = 0;
        for (_, f) in functions(&module) {
            assert_eq!(loops(&f.body), metered_loops(&f.body));
            total += metered_loops(&f.body);
        }
        assert_eq!(total, 5, "helper's loop and the entry point's four");
        let entry = &module.entry_points[0].function;
        assert!(matches!(entry.body.first(), Some(Statement::Store { .. })));
        Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .expect("the metered module is valid");
        let flag = module
            .global_variables
            .iter()
            .find_map(|(_, g)| g.binding.filter(|b| b.group == FUEL_GROUP))
            .expect("the flag binding");
        assert_eq!(flag.binding, FUEL_BINDING);
    }

    /// The passes a charge block at the start of `block` (or right before `at`) spends.
    fn charge(block: &[Statement], exprs: &naga::Arena<Expression>) -> Option<u32> {
        let Some(Statement::If { condition, .. }) = block.get(1) else {
            return None;
        };
        let Expression::Binary {
            op: BinaryOperator::Less,
            right,
            ..
        } = exprs[*condition]
        else {
            return None;
        };
        match exprs[right] {
            Expression::Literal(Literal::U32(n)) => Some(n),
            _ => None,
        }
    }

    /// The charges right before each `break` (a charge block is `Emit`, `If`).
    fn break_charges(block: &[Statement], exprs: &naga::Arena<Expression>, out: &mut Vec<u32>) {
        if let [.., _, _, Statement::Break] = block {
            out.extend(charge(&block[block.len() - 3..], exprs));
        }
        for s in block {
            match s {
                Statement::Loop {
                    body, continuing, ..
                } => {
                    break_charges(body, exprs, out);
                    break_charges(continuing, exprs, out);
                }
                Statement::Block(b) => break_charges(b, exprs, out),
                Statement::If { accept, reject, .. } => {
                    break_charges(accept, exprs, out);
                    break_charges(reject, exprs, out);
                }
                _ => {}
            }
        }
    }

    #[test]
    fn skipped_code_is_charged_for_its_loops_calls_included() {
        let src = format!(
            "{HEAD}fn two() {{ for (var i = 0u; i < 2u; i++) {{ }} for (var i = 0u; i < 2u; i++) {{ }} }}
@compute @workgroup_size(1) fn main() {{
    if o[0] == 1u {{ two(); }} else {{ o[1] = 2u; }}
    for (var i = 0u; i < 9u; i++) {{
        if o[i] == 3u {{ break; }}
        for (var j = 0u; j < 2u; j++) {{ }}
    }}
}}"
        );
        let module = meter(&src).unwrap();
        let main = &module.entry_points[0].function;
        let Some(Statement::If { accept, reject, .. }) =
            main.body.iter().find(|s| matches!(s, Statement::If { .. }))
        else {
            panic!("the if: {:?}", main.body);
        };
        assert_eq!(
            charge(reject, &main.expressions),
            Some(2),
            "skips two()'s loops"
        );
        assert_eq!(
            charge(accept, &main.expressions),
            None,
            "the else holds no loop"
        );
        // The for loop's own exit (`if i < 9 {} else { break; }`) and the user's `break`
        // each skip the inner loop; the inner loop's exit skips nothing.
        let mut breaks_charged = Vec::new();
        break_charges(&main.body, &main.expressions, &mut breaks_charged);
        assert_eq!(breaks_charged, [1, 1]);
    }

    #[test]
    fn a_loop_in_a_loop_with_a_barrier_stays_valid() {
        let src = "var<workgroup> tile: array<u32, 64>;
@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) l: u32) {
    var acc = 0u;
    for (var t = 0u; t < 4u; t++) {
        tile[l] = t + l;
        workgroupBarrier();
        for (var k = 0u; k < 64u; k++) { acc += tile[k]; }
        workgroupBarrier();
    }
    o[l] = acc;
}";
        meter(src).expect("a tiled kernel is accepted");
    }

    #[test]
    fn loops_that_cannot_exit_are_rejected_with_their_line() {
        for (body, line) in [
            ("loop { }", 3),
            ("var i = 0u;\nloop { i += 1u; o[0] = i; }", 4),
            ("loop { switch 1 { default { break; } } }", 3),
            ("loop { if true { } continuing { o[0] = 1u; } }", 3),
            ("for (var i = 0u; i < 4u; i++) { loop { o[i] = i; } }", 3),
        ] {
            match meter(&kernel(body)) {
                Err(ExecError::EndlessLoop { function, line: at }) => {
                    assert_eq!(function, "main", "{body}");
                    assert_eq!(at, line, "{body}");
                }
                other => panic!("{body}: expected EndlessLoop, got {other:?}"),
            }
        }
        let helper = format!(
            "{HEAD}fn spin() {{ loop {{ }} }}\n@compute @workgroup_size(1) fn main() {{ spin(); }}"
        );
        assert!(
            matches!(meter(&helper), Err(ExecError::EndlessLoop { function, .. }) if function == "spin")
        );
    }

    #[test]
    fn loops_with_an_exit_are_accepted() {
        for body in [
            "loop { if o[0] == 1u { break; } }",
            "loop { if o[0] == 1u { return; } }",
            "loop { for (var i = 0u; i < 2u; i++) { return; } }",
            "loop { o[0] += 1u; continuing { break if o[0] > 9u; } }",
            "while o[0] < 9u { o[0] += 1u; }",
        ] {
            meter(&kernel(body)).unwrap_or_else(|e| panic!("{body}: {e}"));
        }
    }

    #[test]
    fn bindings_outside_group_0_are_refused() {
        let src = "@group(1) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(1) fn main() { o[0] = 1u; }";
        match meter(src) {
            Err(ExecError::PipelineRejected { message }) => {
                assert!(message.contains("@group(0) only"), "{message}")
            }
            other => panic!("expected PipelineRejected, got {other:?}"),
        }
    }

    #[test]
    fn invalid_wgsl_is_reported_with_its_position() {
        match meter(&kernel("o[0] = undefined_name;")) {
            Err(ExecError::InvalidWgsl { message }) => {
                assert!(message.contains("undefined_name"), "{message}");
                assert!(message.contains(":3:"), "line and column: {message}");
            }
            other => panic!("expected InvalidWgsl, got {other:?}"),
        }
    }
}
