//! Running an execution: states in order, payload processing, Retry and Catch, Parallel
//! branches and Map items, timeouts, cancellation.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, try_join_all};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::model::*;
use crate::path::RefPath;

/// Executions longer than this many state transitions fail (AWS caps history at 25,000).
pub const MAX_TRANSITIONS: usize = 25_000;

impl StateMachine {
    /// Runs one execution to its end, failure, or cancellation.
    pub async fn execute(
        &self,
        execution_name: &str,
        input: Value,
        invoker: Arc<dyn TaskInvoker>,
        cancel: CancellationToken,
    ) -> Result<Value, ExecutionError> {
        let ctx = Ctx {
            invoker,
            scale: self.time_scale,
            transitions: AtomicUsize::new(0),
            machine: json!({
                "Id": format!("arn:local:states:stateMachine:{}", self.name),
                "Name": &*self.name,
            }),
            execution: json!({
                "Id": format!("arn:local:states:execution:{}:{execution_name}", self.name),
                "Name": execution_name,
                "Input": input.clone(),
                "StartTime": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            }),
        };
        let run = run_machine(&self.root, input, &ctx);
        let run = async {
            match self.timeout {
                Some(t) => tokio::time::timeout(ctx.duration(t), run)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::new(
                            "States.Timeout",
                            "the execution exceeded its TimeoutSeconds",
                        ))
                    }),
                None => run.await,
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ExecutionError::Cancelled),
            r = run => r.map_err(|f| ExecutionError::Failed { error: f.error, cause: f.cause }),
        }
    }
}

struct Ctx {
    invoker: Arc<dyn TaskInvoker>,
    scale: f64,
    transitions: AtomicUsize,
    /// `$$.Execution` and `$$.StateMachine`.
    execution: Value,
    machine: Value,
}

impl Ctx {
    fn duration(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.scale).max(0.0))
    }

    fn context(&self, state: &str, retry_count: u32) -> Value {
        json!({
            "Execution": self.execution,
            "State": { "Name": state, "RetryCount": retry_count },
            "StateMachine": self.machine,
        })
    }

    /// The context object of `state`, made only if a template reads it.
    fn lazy_context<'a>(
        &'a self,
        state: &'a str,
        retry_count: u32,
    ) -> Context<impl Fn() -> Value + 'a> {
        Context::new(move || self.context(state, retry_count))
    }
}

/// A template's context object (`$$`), made the first time one of its paths reads it:
/// it copies the execution's input, and most templates read only their state's input.
struct Context<F> {
    make: F,
    made: std::cell::OnceCell<Value>,
}

impl<F: Fn() -> Value> Context<F> {
    fn new(make: F) -> Self {
        Context {
            make,
            made: std::cell::OnceCell::new(),
        }
    }

    fn get(&self) -> &Value {
        self.made.get_or_init(|| (self.make)())
    }
}

fn runtime(cause: impl Into<String>) -> Failure {
    Failure::new("States.Runtime", cause)
}

/// Fills a Parameters/ResultSelector template: `key.$` takes the value at a path.
fn fill<F: Fn() -> Value>(
    template: &Value,
    input: &Value,
    context: &Context<F>,
) -> Result<Value, Failure> {
    match template {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let text = v.as_str().unwrap_or_default();
                    let p = RefPath::parse(text).map_err(runtime)?;
                    let root = if p.context { context.get() } else { input };
                    let found = p.get(root).ok_or_else(|| {
                        runtime(format!(
                            "the path `{text}` of `{k}` matched nothing in the input"
                        ))
                    })?;
                    out.insert(key.to_string(), found.clone());
                } else {
                    out.insert(k.clone(), fill(v, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => Ok(Value::Array(
            a.iter()
                .map(|v| fill(v, input, context))
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(other.clone()),
    }
}

/// InputPath/OutputPath applied to `v`, which is used up (`$`, the default, keeps it
/// whole without a copy).
fn select(path: &Option<RefPath>, v: Value, field: &str) -> Result<Value, Failure> {
    match path {
        None => Ok(json!({})),
        Some(p) => p.take(v).ok_or_else(|| matched_nothing(field, p)),
    }
}

/// InputPath applied to `v`, which stays: a part of it, borrowed.
fn select_ref<'v>(
    path: &Option<RefPath>,
    v: &'v Value,
    field: &str,
) -> Result<Cow<'v, Value>, Failure> {
    match path {
        None => Ok(Cow::Owned(json!({}))),
        Some(p) => p
            .get(v)
            .map(Cow::Borrowed)
            .ok_or_else(|| matched_nothing(field, p)),
    }
}

fn matched_nothing(field: &str, p: &RefPath) -> Failure {
    runtime(format!("{field} `{}` matched nothing", p.text))
}

/// ResultPath: `result` placed in the raw input (used up).
fn place(
    state: &State,
    path: &Option<RefPath>,
    raw_input: Value,
    result: Value,
) -> Result<Value, Failure> {
    match path {
        None => Ok(raw_input),
        Some(p) => p.set(raw_input, result).map_err(|e| {
            Failure::new(
                "States.ResultPathMatchFailure",
                format!("state `{}`: {e}", state.name),
            )
        }),
    }
}

fn matches(names: &[String], f: &Failure) -> bool {
    names.iter().any(|n| {
        n == &f.error
            || n == "States.ALL"
            || (n == "States.TaskFailed"
                && f.error != "States.Timeout"
                && !f.error.starts_with("States.Runtime"))
    })
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn eval(rule: &ChoiceRule, input: &Value) -> Result<bool, Failure> {
    match rule {
        ChoiceRule::And(r) => {
            for x in r {
                if !eval(x, input)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        ChoiceRule::Or(r) => {
            for x in r {
                if eval(x, input)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        ChoiceRule::Not(r) => Ok(!eval(r, input)?),
        ChoiceRule::Compare {
            variable,
            op,
            operand,
        } => {
            let value = variable.get(input);
            if op == "IsPresent" {
                return Ok(value.is_some() == operand.as_bool().unwrap_or(true));
            }
            let value = value
                .ok_or_else(|| runtime(format!("Variable `{}` matched nothing", variable.text)))?;
            let operand = if op.ends_with("Path") {
                let p = RefPath::parse(operand.as_str().unwrap_or_default()).map_err(runtime)?;
                p.get(input)
                    .cloned()
                    .ok_or_else(|| runtime(format!("`{}` matched nothing", p.text)))?
            } else {
                operand.clone()
            };
            let want = operand.as_bool().unwrap_or(true);
            Ok(match op.as_str() {
                "StringEquals" | "StringEqualsPath" => {
                    value.as_str().is_some() && value.as_str() == operand.as_str()
                }
                "StringLessThan" => {
                    matches!((value.as_str(), operand.as_str()), (Some(a), Some(b)) if a < b)
                }
                "StringGreaterThan" => {
                    matches!((value.as_str(), operand.as_str()), (Some(a), Some(b)) if a > b)
                }
                "NumericEquals" | "NumericEqualsPath" => {
                    matches!((number(value), number(&operand)), (Some(a), Some(b)) if a == b)
                }
                "NumericLessThan" => {
                    matches!((number(value), number(&operand)), (Some(a), Some(b)) if a < b)
                }
                "NumericLessThanEquals" => {
                    matches!((number(value), number(&operand)), (Some(a), Some(b)) if a <= b)
                }
                "NumericGreaterThan" => {
                    matches!((number(value), number(&operand)), (Some(a), Some(b)) if a > b)
                }
                "NumericGreaterThanEquals" => {
                    matches!((number(value), number(&operand)), (Some(a), Some(b)) if a >= b)
                }
                "BooleanEquals" => {
                    value.as_bool().is_some() && value.as_bool() == operand.as_bool()
                }
                "IsNull" => value.is_null() == want,
                "IsString" => value.is_string() == want,
                "IsNumeric" => value.is_number() == want,
                "IsBoolean" => value.is_boolean() == want,
                _ => false,
            })
        }
    }
}

fn run_machine<'a>(
    m: &'a Machine,
    input: Value,
    ctx: &'a Ctx,
) -> BoxFuture<'a, Result<Value, Failure>> {
    async move {
        let mut current = m.start_at.clone();
        let mut input = input;
        loop {
            if ctx.transitions.fetch_add(1, Ordering::Relaxed) >= MAX_TRANSITIONS {
                return Err(runtime(format!(
                    "more than {MAX_TRANSITIONS} state transitions"
                )));
            }
            let state = &m.states[&current];
            match run_state(state, input, ctx).await? {
                (output, Some(next)) => {
                    current = next;
                    input = output;
                }
                (output, None) => return Ok(output),
            }
        }
    }
    .boxed()
}

/// Runs one state; returns its output and the next state (None: the machine ends).
async fn run_state(
    state: &State,
    raw: Value,
    ctx: &Ctx,
) -> Result<(Value, Option<String>), Failure> {
    match &state.kind {
        Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
            run_with_retry(state, raw, ctx).await
        }
        Kind::Succeed => {
            let effective = select(&state.input_path, raw, "InputPath")?;
            Ok((select(&state.output_path, effective, "OutputPath")?, None))
        }
        Kind::Fail { error, cause } => {
            select_ref(&state.input_path, &raw, "InputPath")?;
            Err(Failure::new(error, cause.clone()))
        }
        Kind::Choice { choices, default } => {
            let effective = select(&state.input_path, raw, "InputPath")?;
            let mut next = None;
            for (rule, target) in choices {
                if eval(rule, &effective)? {
                    next = Some(target.clone());
                    break;
                }
            }
            let next = next.or_else(|| default.clone()).ok_or_else(|| {
                Failure::new(
                    "States.NoChoiceMatched",
                    format!(
                        "no choice of `{}` matched and it has no Default",
                        state.name
                    ),
                )
            })?;
            Ok((
                select(&state.output_path, effective, "OutputPath")?,
                Some(next),
            ))
        }
        Kind::Pass { result } => {
            let result = {
                let effective = select_ref(&state.input_path, &raw, "InputPath")?;
                let effective = match &state.parameters {
                    Some(t) => Cow::Owned(fill(t, &effective, &ctx.lazy_context(&state.name, 0))?),
                    None => effective,
                };
                match result {
                    Some(r) => r.clone(),
                    None => effective.into_owned(),
                }
            };
            let placed = place(state, &state.result_path, raw, result)?;
            Ok((
                select(&state.output_path, placed, "OutputPath")?,
                state.next.clone(),
            ))
        }
    }
}

async fn attempt(state: &State, input: Value, ctx: &Ctx) -> Result<Value, Failure> {
    match &state.kind {
        Kind::Task { resource, timeout } => {
            let call = ctx.invoker.invoke(resource, input);
            let r = match timeout {
                Some(t) => match tokio::time::timeout(ctx.duration(*t), call).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Failure::new(
                            "States.Timeout",
                            format!("state `{}` timed out after {t} s", state.name),
                        ));
                    }
                },
                None => call.await,
            };
            r.map_err(|e| Failure {
                error: e.error,
                cause: e.cause,
            })
        }
        Kind::Parallel { branches, timeout } => {
            // The first failing branch fails the state; the others are dropped (stopped).
            let all = try_join_all(branches.iter().map(|b| run_machine(b, input.clone(), ctx)));
            Ok(Value::Array(within(state, *timeout, ctx, all).await?))
        }
        Kind::Map {
            items,
            selector,
            processor,
            max_concurrency,
            timeout,
        } => {
            let list = match items.get(&input) {
                Some(Value::Array(a)) => a.clone(),
                Some(other) => {
                    return Err(runtime(format!(
                        "state `{}`: ItemsPath `{}` is not an array (got {other})",
                        state.name, items.text
                    )));
                }
                None => {
                    return Err(runtime(format!(
                        "state `{}`: ItemsPath `{}` matched nothing",
                        state.name, items.text
                    )));
                }
            };
            let mut inputs = Vec::with_capacity(list.len());
            for (i, item) in list.into_iter().enumerate() {
                inputs.push(match selector {
                    Some(t) => {
                        let c = Context::new(|| {
                            let mut c = ctx.context(&state.name, 0);
                            c["Map"] = json!({ "Item": { "Index": i, "Value": item } });
                            c
                        });
                        fill(t, &input, &c)?
                    }
                    None => item,
                });
            }
            let width = if *max_concurrency == 0 {
                inputs.len().max(1)
            } else {
                *max_concurrency
            };
            // In item order, at most `width` at a time; the first failure fails the state.
            let all =
                futures::stream::iter(inputs.into_iter().map(|i| run_machine(processor, i, ctx)))
                    .buffered(width)
                    .try_collect::<Vec<Value>>();
            Ok(Value::Array(within(state, *timeout, ctx, all).await?))
        }
        _ => Err(runtime("not a Task, Parallel or Map state")),
    }
}

/// Runs a state's work within its `TimeoutSeconds` (if any): past it, `States.Timeout`.
async fn within<T>(
    state: &State,
    timeout: Option<f64>,
    ctx: &Ctx,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    match timeout {
        Some(t) => tokio::time::timeout(ctx.duration(t), work)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::new(
                    "States.Timeout",
                    format!("state `{}` timed out after {t} s", state.name),
                ))
            }),
        None => work.await,
    }
}

async fn run_with_retry(
    state: &State,
    raw: Value,
    ctx: &Ctx,
) -> Result<(Value, Option<String>), Failure> {
    let mut counts = vec![0u32; state.retry.len()];
    let mut retries = 0u32;
    loop {
        let params = {
            let effective = select_ref(&state.input_path, &raw, "InputPath")?;
            match &state.parameters {
                Some(t) => fill(t, &effective, &ctx.lazy_context(&state.name, retries))?,
                None => effective.into_owned(),
            }
        };
        let outcome = match attempt(state, params, ctx).await {
            Ok(result) => {
                let selected = match &state.result_selector {
                    Some(t) => fill(t, &result, &ctx.lazy_context(&state.name, retries))?,
                    None => result,
                };
                match &state.result_path {
                    // The result is dropped and the raw input goes on (nothing to fail
                    // here, so `raw` is not needed for another attempt).
                    None => {
                        let out = select(&state.output_path, raw, "OutputPath")?;
                        return Ok((out, state.next.clone()));
                    }
                    // A failure to place the result can be retried or caught: `raw` is
                    // kept for that.
                    Some(_) => place(state, &state.result_path, raw.clone(), selected),
                }
                .and_then(|placed| select(&state.output_path, placed, "OutputPath"))
            }
            Err(f) => Err(f),
        };
        let failure = match outcome {
            Ok(out) => return Ok((out, state.next.clone())),
            Err(f) if f.is_terminal() => return Err(f),
            Err(f) => f,
        };
        if let Some(i) = state
            .retry
            .iter()
            .position(|r| matches(&r.errors, &failure))
        {
            let r = &state.retry[i];
            if counts[i] < r.max_attempts {
                let mut delay = r.interval * r.backoff.powi(counts[i] as i32);
                if let Some(m) = r.max_delay {
                    delay = delay.min(m);
                }
                counts[i] += 1;
                retries += 1;
                tokio::time::sleep(ctx.duration(delay)).await;
                continue;
            }
        }
        if let Some(c) = state.catch.iter().find(|c| matches(&c.errors, &failure)) {
            let error_output = json!({ "Error": failure.error, "Cause": failure.cause });
            let out = place(state, &c.result_path, raw, error_output)?;
            return Ok((out, Some(c.next.clone())));
        }
        return Err(failure);
    }
}
