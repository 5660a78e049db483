//! The one sandboxed Rhai engine: limits on operations, wall time, depth, sizes; strict
//! variables; no `import` (the crate is built with `no_module`); print/debug go to tracing.

use crate::config::SandboxLimits;
use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, Position, Scope};
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// Deadline of the script call running on this thread; checked from `on_progress`.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Operations counted by the call running on this thread.
    static OPERATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The text the progress callback aborts with when the deadline passes.
pub const TIMEOUT_TOKEN: &str = "wall-clock deadline exceeded";

/// Builds an engine with every limit from `limits` set and every fail-open default closed.
pub fn build_engine(limits: &SandboxLimits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_variables(1_000)
        .set_max_functions(1_000)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_optimization_level(rhai::OptimizationLevel::Full);
    engine.on_print(|text| tracing::info!(target: "rules", "{text}"));
    engine.on_debug(|text, source, pos| {
        tracing::debug!(target: "rules", "{}:{}: {text}", source.unwrap_or("script"), pos)
    });
    engine.on_progress(|ops| {
        OPERATIONS.with(|c| c.set(ops));
        // Reading the clock on every operation would dominate cheap scripts.
        if ops % 512 == 0
            && let Some(deadline) = DEADLINE.with(Cell::get)
            && Instant::now() >= deadline
        {
            return Some(Dynamic::from(TIMEOUT_TOKEN));
        }
        None
    });
    super::api::register(&mut engine);
    engine
}

/// What one script call cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCost {
    pub operations: u64,
    pub micros: u64,
}

/// A script failure, formatted `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ScriptError {
    pub location: String,
    pub message: String,
}

impl ScriptError {
    pub fn new(source: &str, pos: Position, message: impl Into<String>) -> Self {
        let location = match pos.line() {
            Some(line) => format!("{source}:{line}"),
            None => source.to_string(),
        };
        Self {
            location,
            message: message.into(),
        }
    }
}

/// Turns a Rhai error into a located one, digging through nested function-call errors to the
/// innermost position (where the fault actually is).
pub fn describe(source: &str, err: &EvalAltResult) -> ScriptError {
    let mut e = err;
    let mut pos = err.position();
    let mut inner_fn = None;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, p) = e {
        if inner_fn.is_none() {
            inner_fn = Some(name.clone());
        }
        if !p.is_none() {
            pos = *p;
        }
        e = inner;
        if !e.position().is_none() {
            pos = e.position();
        }
    }
    let message = match e {
        EvalAltResult::ErrorTerminated(token, _) if token.to_string().contains(TIMEOUT_TOKEN) => {
            "script timed out (sandbox.timeout_ms)".to_string()
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            "script exceeded its operation limit (sandbox.max_operations)".to_string()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "script recursed too deeply (sandbox.max_call_levels)".to_string()
        }
        other => {
            let mut s = other.to_string();
            if let Some(i) = s.find(" (line ") {
                s.truncate(i);
            }
            s
        }
    };
    let message = match inner_fn {
        Some(f) => format!("in fn {f}: {message}"),
        None => message,
    };
    ScriptError::new(source, pos, message)
}

/// Calls `function` in `ast` with `args`, `this` bound to `state`, under the wall-clock deadline.
///
/// # Errors
/// Any script failure (including timeouts and limit hits), located.
pub fn call<A: FuncArgs>(
    engine: &Engine,
    ast: &AST,
    source: &str,
    function: &str,
    state: &mut Dynamic,
    args: A,
    timeout: Duration,
) -> (Result<Dynamic, ScriptError>, CallCost) {
    let started = Instant::now();
    DEADLINE.with(|c| c.set(Some(started + timeout)));
    OPERATIONS.with(|c| c.set(0));
    let mut scope = Scope::new();
    let options = CallFnOptions::new()
        .eval_ast(false)
        .rewind_scope(true)
        .bind_this_ptr(state);
    let result = engine.call_fn_with_options::<Dynamic>(options, &mut scope, ast, function, args);
    DEADLINE.with(|c| c.set(None));
    let cost = CallCost {
        operations: OPERATIONS.with(Cell::get),
        micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    };
    (result.map_err(|e| describe(source, &e)), cost)
}
