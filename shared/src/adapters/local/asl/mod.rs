//! The local Amazon States Language engine: runs `statemachine.asl.json` in process with
//! AWS's documented semantics for the subset the flow uses — Pass, Task, Choice, Parallel,
//! Succeed, Fail; InputPath / Parameters / ResultSelector / ResultPath / OutputPath;
//! Retry (IntervalSeconds, BackoffRate, MaxAttempts, MaxDelaySeconds); Catch with
//! ResultPath; TimeoutSeconds on Tasks, Parallels and the machine. Anything else is refused
//! when the definition is loaded, naming the construct and the state.

mod path;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt, try_join_all};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

pub use path::RefPath;

/// Executions longer than this many state transitions fail (AWS caps history at 25,000).
pub const MAX_TRANSITIONS: usize = 25_000;

/// A failed Task: the error name (matched by Retry/Catch) and its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

/// Runs a Task's resource with its effective input.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// `resource` is the Task's `Resource` exactly as written, e.g. `${CopyAgentFunctionArn}`.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", state.as_ref().map(|s| format!("state `{s}`: ")).unwrap_or_default())]
pub struct LoadError {
    pub state: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecutionError {
    #[error("execution failed: {error}: {cause}")]
    Failed { error: String, cause: String },
    #[error("execution cancelled")]
    Cancelled,
}

/// A failure inside the execution, before it reaches the top.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    error: String,
    cause: String,
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }
    /// States.Runtime and the like end the execution: no Retry or Catch applies.
    fn is_terminal(&self) -> bool {
        matches!(
            self.error.as_str(),
            "States.Runtime" | "States.DataLimitExceeded"
        )
    }
}

#[derive(Debug, Clone)]
struct Retrier {
    errors: Vec<String>,
    interval: f64,
    max_attempts: u32,
    backoff: f64,
    max_delay: Option<f64>,
}

#[derive(Debug, Clone)]
struct Catcher {
    errors: Vec<String>,
    result_path: Option<RefPath>,
    next: String,
}

#[derive(Debug, Clone)]
enum ChoiceRule {
    Compare {
        variable: RefPath,
        op: String,
        operand: Value,
    },
    And(Vec<ChoiceRule>),
    Or(Vec<ChoiceRule>),
    Not(Box<ChoiceRule>),
}

#[derive(Debug, Clone)]
enum Kind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<f64>,
    },
    Choice {
        choices: Vec<(ChoiceRule, String)>,
        default: Option<String>,
    },
    Parallel {
        branches: Vec<Machine>,
        timeout: Option<f64>,
    },
    /// An inline Map: the processor runs once per item of `items`, at most
    /// `max_concurrency` at a time (0: all at once); the output is their outputs in order.
    Map {
        items: RefPath,
        selector: Option<Value>,
        processor: Box<Machine>,
        max_concurrency: usize,
        timeout: Option<f64>,
    },
    Succeed,
    Fail {
        error: String,
        cause: String,
    },
}

/// `None` inside: the field was `null` (discard); absent fields default to `$`.
#[derive(Debug, Clone)]
struct State {
    name: String,
    kind: Kind,
    next: Option<String>,
    input_path: Option<RefPath>,
    output_path: Option<RefPath>,
    result_path: Option<RefPath>,
    parameters: Option<Value>,
    result_selector: Option<Value>,
    retry: Vec<Retrier>,
    catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
struct Machine {
    start_at: String,
    states: HashMap<String, State>,
}

/// A loaded definition. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachine {
    root: Arc<Machine>,
    timeout: Option<f64>,
    time_scale: f64,
}

// ------------------------------------------------------------------------------- loading

const COMMON: &[&str] = &["Type", "Comment", "Next", "End", "InputPath", "OutputPath"];

fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pass" => &["Result", "ResultPath", "Parameters"],
        "Task" => &[
            "Resource",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
        ],
        "Choice" => &["Choices", "Default"],
        "Parallel" => &[
            "Branches",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
        ],
        "Map" => &[
            "ItemsPath",
            "ItemSelector",
            "ItemProcessor",
            "MaxConcurrency",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
        ],
        "Succeed" => &[],
        "Fail" => &["Error", "Cause"],
        _ => return None,
    })
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringEqualsPath",
    "StringLessThan",
    "StringGreaterThan",
    "NumericEquals",
    "NumericEqualsPath",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "BooleanEquals",
    "IsPresent",
    "IsNull",
    "IsString",
    "IsNumeric",
    "IsBoolean",
];

struct Loader<'a> {
    state: Option<&'a str>,
}

impl Loader<'_> {
    fn err(&self, message: impl Into<String>) -> LoadError {
        LoadError {
            state: self.state.map(str::to_string),
            message: message.into(),
        }
    }

    fn path(&self, v: Option<&Value>, field: &str) -> Result<Option<RefPath>, LoadError> {
        match v {
            None => Ok(Some(RefPath::parse("$").map_err(|e| self.err(e))?)),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let p = RefPath::parse(s).map_err(|e| self.err(format!("{field}: {e}")))?;
                if p.context {
                    return Err(self.err(format!("{field} cannot refer to the context object")));
                }
                Ok(Some(p))
            }
            Some(_) => Err(self.err(format!("{field} must be a path string or null"))),
        }
    }

    fn seconds(&self, v: Option<&Value>, field: &str) -> Result<Option<f64>, LoadError> {
        match v {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(n) if n > 0.0 => Ok(Some(n)),
                _ => Err(self.err(format!("{field} must be a positive number"))),
            },
        }
    }

    /// Payload templates: `key.$` values must be reference paths (intrinsic functions are
    /// not implemented and are refused here).
    fn template(&self, v: &Value, field: &str) -> Result<(), LoadError> {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k.ends_with(".$") {
                        let Value::String(s) = v else {
                            return Err(self.err(format!("{field}: `{k}` must be a path string")));
                        };
                        if s.starts_with("States.") {
                            return Err(self.err(format!(
                                "{field}: intrinsic function `{}` is not supported by the local engine",
                                s.split('(').next().unwrap_or(s)
                            )));
                        }
                        RefPath::parse(s).map_err(|e| self.err(format!("{field}: `{k}`: {e}")))?;
                    } else {
                        self.template(v, field)?;
                    }
                }
                Ok(())
            }
            Value::Array(a) => a.iter().try_for_each(|v| self.template(v, field)),
            _ => Ok(()),
        }
    }

    fn errors_list(&self, v: &Value, field: &str) -> Result<Vec<String>, LoadError> {
        let list: Vec<String> = v
            .get("ErrorEquals")
            .and_then(Value::as_array)
            .ok_or_else(|| self.err(format!("{field}: ErrorEquals is required")))?
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.err(format!("{field}: error names are strings")))
            })
            .collect::<Result<_, _>>()?;
        if list.is_empty() {
            return Err(self.err(format!("{field}: ErrorEquals must not be empty")));
        }
        if list.iter().any(|e| e == "States.ALL") && list.len() > 1 {
            return Err(self.err(format!("{field}: States.ALL must appear alone")));
        }
        Ok(list)
    }

    fn retriers(&self, v: Option<&Value>) -> Result<Vec<Retrier>, LoadError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let arr = v
            .as_array()
            .ok_or_else(|| self.err("Retry must be an array"))?;
        let mut out = Vec::new();
        for (i, r) in arr.iter().enumerate() {
            let field = format!("Retry[{i}]");
            let obj = r
                .as_object()
                .ok_or_else(|| self.err(format!("{field} must be an object")))?;
            for k in obj.keys() {
                if ![
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "Comment",
                ]
                .contains(&k.as_str())
                {
                    return Err(self.err(format!(
                        "{field}: `{k}` is not supported by the local engine"
                    )));
                }
            }
            let errors = self.errors_list(r, &field)?;
            if errors.iter().any(|e| e == "States.ALL") && i + 1 != arr.len() {
                return Err(self.err(format!("{field}: a States.ALL retrier must be the last")));
            }
            out.push(Retrier {
                errors,
                interval: self
                    .seconds(obj.get("IntervalSeconds"), "IntervalSeconds")?
                    .unwrap_or(1.0),
                max_attempts: obj
                    .get("MaxAttempts")
                    .map(|m| m.as_u64().unwrap_or(3) as u32)
                    .unwrap_or(3),
                backoff: obj
                    .get("BackoffRate")
                    .and_then(Value::as_f64)
                    .unwrap_or(2.0),
                max_delay: self.seconds(obj.get("MaxDelaySeconds"), "MaxDelaySeconds")?,
            });
        }
        Ok(out)
    }

    fn catchers(&self, v: Option<&Value>) -> Result<Vec<Catcher>, LoadError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let arr = v
            .as_array()
            .ok_or_else(|| self.err("Catch must be an array"))?;
        let mut out = Vec::new();
        for (i, c) in arr.iter().enumerate() {
            let field = format!("Catch[{i}]");
            let obj = c
                .as_object()
                .ok_or_else(|| self.err(format!("{field} must be an object")))?;
            for k in obj.keys() {
                if !["ErrorEquals", "ResultPath", "Next", "Comment"].contains(&k.as_str()) {
                    return Err(self.err(format!(
                        "{field}: `{k}` is not supported by the local engine"
                    )));
                }
            }
            let errors = self.errors_list(c, &field)?;
            if errors.iter().any(|e| e == "States.ALL") && i + 1 != arr.len() {
                return Err(self.err(format!("{field}: a States.ALL catcher must be the last")));
            }
            out.push(Catcher {
                errors,
                result_path: self.path(obj.get("ResultPath"), "ResultPath")?,
                next: obj
                    .get("Next")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.err(format!("{field}: Next is required")))?
                    .to_string(),
            });
        }
        Ok(out)
    }

    fn rule(&self, v: &Value, top: bool) -> Result<(ChoiceRule, Option<String>), LoadError> {
        let obj = v
            .as_object()
            .ok_or_else(|| self.err("a choice rule must be an object"))?;
        let next = obj.get("Next").and_then(Value::as_str).map(str::to_string);
        if top && next.is_none() {
            return Err(self.err("every top-level choice rule needs Next"));
        }
        if !top && next.is_some() {
            return Err(self.err("Next is only allowed on top-level choice rules"));
        }
        let mut rule = None;
        for (k, val) in obj {
            match k.as_str() {
                "Next" | "Comment" | "Variable" => {}
                "And" | "Or" => {
                    let subs = val
                        .as_array()
                        .ok_or_else(|| self.err(format!("{k} takes an array of rules")))?
                        .iter()
                        .map(|r| self.rule(r, false).map(|(r, _)| r))
                        .collect::<Result<Vec<_>, _>>()?;
                    rule = Some(if k == "And" {
                        ChoiceRule::And(subs)
                    } else {
                        ChoiceRule::Or(subs)
                    });
                }
                "Not" => rule = Some(ChoiceRule::Not(Box::new(self.rule(val, false)?.0))),
                op if OPERATORS.contains(&op) => {
                    let var = obj
                        .get("Variable")
                        .and_then(Value::as_str)
                        .ok_or_else(|| self.err(format!("{op} needs a Variable")))?;
                    let variable =
                        RefPath::parse(var).map_err(|e| self.err(format!("Variable: {e}")))?;
                    if op.ends_with("Path") {
                        let p = val
                            .as_str()
                            .ok_or_else(|| self.err(format!("{op} takes a path")))?;
                        RefPath::parse(p).map_err(|e| self.err(format!("{op}: {e}")))?;
                    }
                    rule = Some(ChoiceRule::Compare {
                        variable,
                        op: op.to_string(),
                        operand: val.clone(),
                    });
                }
                other => {
                    return Err(self.err(format!(
                        "choice operator `{other}` is not supported by the local engine (supported: {}, And, Or, Not)",
                        OPERATORS.join(", ")
                    )));
                }
            }
        }
        let rule =
            rule.ok_or_else(|| self.err("a choice rule needs a comparison, And, Or or Not"))?;
        Ok((rule, next))
    }
}

fn load_machine(v: &Value, top: bool) -> Result<Machine, LoadError> {
    let top_loader = Loader { state: None };
    let obj = v
        .as_object()
        .ok_or_else(|| top_loader.err("a state machine must be an object"))?;
    let allowed: &[&str] = if top {
        &["Comment", "StartAt", "States", "TimeoutSeconds", "Version"]
    } else {
        &["Comment", "StartAt", "States"]
    };
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(top_loader.err(format!(
                "top-level field `{k}` is not supported by the local engine"
            )));
        }
    }
    let start_at = obj
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or_else(|| top_loader.err("StartAt is required"))?
        .to_string();
    let states_obj = obj
        .get("States")
        .and_then(Value::as_object)
        .ok_or_else(|| top_loader.err("States is required"))?;
    let mut states = HashMap::new();
    for (name, s) in states_obj {
        let l = Loader { state: Some(name) };
        let so = s.as_object().ok_or_else(|| l.err("must be an object"))?;
        let ty = so
            .get("Type")
            .and_then(Value::as_str)
            .ok_or_else(|| l.err("Type is required"))?;
        let extra = allowed_fields(ty).ok_or_else(|| {
            l.err(format!(
                "state type `{ty}` is not supported by the local engine (supported: Pass, Task, Choice, Parallel, Map (inline), Succeed, Fail)"
            ))
        })?;
        for k in so.keys() {
            if !COMMON.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
                return Err(l.err(format!(
                    "field `{k}` is not supported on a {ty} state by the local engine (supported: {})",
                    COMMON.iter().chain(extra.iter()).copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let next = so.get("Next").and_then(Value::as_str).map(str::to_string);
        let end = so.get("End").and_then(Value::as_bool).unwrap_or(false);
        match ty {
            "Choice" | "Succeed" | "Fail" => {
                if next.is_some() || so.contains_key("End") {
                    return Err(l.err(format!("a {ty} state has neither Next nor End")));
                }
            }
            _ => {
                if next.is_some() == end {
                    return Err(l.err("exactly one of Next or End is required"));
                }
            }
        }
        if ty == "Fail" && (so.contains_key("InputPath") || so.contains_key("OutputPath")) {
            return Err(l.err("a Fail state takes no InputPath or OutputPath"));
        }
        for f in ["Parameters", "ResultSelector", "ItemSelector"] {
            if let Some(t) = so.get(f) {
                l.template(t, f)?;
            }
        }
        let kind = match ty {
            "Pass" => Kind::Pass {
                result: so.get("Result").cloned(),
            },
            "Task" => Kind::Task {
                resource: so
                    .get("Resource")
                    .and_then(Value::as_str)
                    .ok_or_else(|| l.err("Resource is required"))?
                    .to_string(),
                timeout: l.seconds(so.get("TimeoutSeconds"), "TimeoutSeconds")?,
            },
            "Choice" => {
                let choices = so
                    .get("Choices")
                    .and_then(Value::as_array)
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| l.err("Choices must be a non-empty array"))?
                    .iter()
                    .map(|c| l.rule(c, true).map(|(r, n)| (r, n.unwrap_or_default())))
                    .collect::<Result<Vec<_>, _>>()?;
                Kind::Choice {
                    choices,
                    default: so
                        .get("Default")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }
            }
            "Parallel" => Kind::Parallel {
                branches: so
                    .get("Branches")
                    .and_then(Value::as_array)
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| l.err("Branches must be a non-empty array"))?
                    .iter()
                    .map(|b| load_machine(b, false))
                    .collect::<Result<Vec<_>, _>>()?,
                timeout: l.seconds(so.get("TimeoutSeconds"), "TimeoutSeconds")?,
            },
            "Map" => {
                let processor = so
                    .get("ItemProcessor")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        l.err("ItemProcessor is required (an object with StartAt and States)")
                    })?;
                let mut machine = processor.clone();
                match machine.remove("ProcessorConfig") {
                    None => {}
                    Some(c)
                        if c.get("Mode")
                            .and_then(Value::as_str)
                            .is_none_or(|m| m == "INLINE")
                            && c.as_object().is_some_and(|o| o.keys().all(|k| k == "Mode")) => {}
                    Some(_) => {
                        return Err(l.err(
                            "ProcessorConfig: only {\"Mode\": \"INLINE\"} is supported by the local engine",
                        ));
                    }
                }
                let items = match l.path(so.get("ItemsPath"), "ItemsPath")? {
                    Some(p) => p,
                    None => return Err(l.err("ItemsPath must be a path")),
                };
                let max_concurrency = match so.get("MaxConcurrency") {
                    None => 0,
                    Some(n) => n
                        .as_u64()
                        .ok_or_else(|| l.err("MaxConcurrency must be a whole number ≥ 0"))?
                        as usize,
                };
                Kind::Map {
                    items,
                    selector: so.get("ItemSelector").cloned(),
                    processor: Box::new(load_machine(&Value::Object(machine), false)?),
                    max_concurrency,
                    timeout: l.seconds(so.get("TimeoutSeconds"), "TimeoutSeconds")?,
                }
            }
            "Succeed" => Kind::Succeed,
            _ => Kind::Fail {
                error: so
                    .get("Error")
                    .and_then(Value::as_str)
                    .unwrap_or("States.Fail")
                    .to_string(),
                cause: so
                    .get("Cause")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
        };
        states.insert(
            name.clone(),
            State {
                name: name.clone(),
                kind,
                next,
                input_path: l.path(so.get("InputPath"), "InputPath")?,
                output_path: l.path(so.get("OutputPath"), "OutputPath")?,
                result_path: l.path(so.get("ResultPath"), "ResultPath")?,
                parameters: so.get("Parameters").cloned(),
                result_selector: so.get("ResultSelector").cloned(),
                retry: l.retriers(so.get("Retry"))?,
                catch: l.catchers(so.get("Catch"))?,
            },
        );
    }
    let m = Machine { start_at, states };
    check_targets(&m)?;
    Ok(m)
}

fn check_targets(m: &Machine) -> Result<(), LoadError> {
    let exists = |t: &str, from: &str| {
        if m.states.contains_key(t) {
            Ok(())
        } else {
            Err(LoadError {
                state: Some(from.to_string()),
                message: format!("transition to `{t}`, which does not exist"),
            })
        }
    };
    if !m.states.contains_key(&m.start_at) {
        return Err(LoadError {
            state: None,
            message: format!("StartAt `{}` does not exist", m.start_at),
        });
    }
    for s in m.states.values() {
        if let Some(n) = &s.next {
            exists(n, &s.name)?;
        }
        for c in &s.catch {
            exists(&c.next, &s.name)?;
        }
        if let Kind::Choice { choices, default } = &s.kind {
            for (_, n) in choices {
                exists(n, &s.name)?;
            }
            if let Some(d) = default {
                exists(d, &s.name)?;
            }
        }
    }
    Ok(())
}

fn collect_resources(m: &Machine, out: &mut Vec<String>) {
    for s in m.states.values() {
        match &s.kind {
            Kind::Task { resource, .. } if !out.contains(resource) => out.push(resource.clone()),
            Kind::Parallel { branches, .. } => {
                branches.iter().for_each(|b| collect_resources(b, out))
            }
            Kind::Map { processor, .. } => collect_resources(processor, out),
            _ => {}
        }
    }
}

impl StateMachine {
    /// Parses and checks a definition, refusing what the engine does not implement.
    pub fn load(definition: &str) -> Result<StateMachine, LoadError> {
        let v: Value = serde_json::from_str(definition).map_err(|e| LoadError {
            state: None,
            message: format!("not JSON: {e}"),
        })?;
        let timeout = Loader { state: None }.seconds(v.get("TimeoutSeconds"), "TimeoutSeconds")?;
        Ok(StateMachine {
            root: Arc::new(load_machine(&v, true)?),
            timeout,
            time_scale: 1.0,
        })
    }

    /// Multiplies every wait (Retry intervals, TimeoutSeconds). Tests shrink time with it.
    pub fn with_time_scale(mut self, scale: f64) -> Self {
        self.time_scale = scale;
        self
    }

    /// Every distinct Task `Resource`, so callers can check they resolve them all.
    pub fn task_resources(&self) -> Vec<String> {
        let mut out = Vec::new();
        collect_resources(&self.root, &mut out);
        out.sort();
        out
    }

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
            execution: json!({
                "Id": format!("arn:local:states:execution:campaign-flow:{execution_name}"),
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

// ------------------------------------------------------------------------------ running

struct Ctx {
    invoker: Arc<dyn TaskInvoker>,
    scale: f64,
    transitions: AtomicUsize,
    execution: Value,
}

impl Ctx {
    fn duration(&self, seconds: f64) -> Duration {
        Duration::from_secs_f64((seconds * self.scale).max(0.0))
    }

    fn context(&self, state: &str, retry_count: u32) -> Value {
        json!({
            "Execution": self.execution,
            "State": { "Name": state, "RetryCount": retry_count },
            "StateMachine": { "Id": "arn:local:states:stateMachine:campaign-flow", "Name": "campaign-flow" },
        })
    }
}

fn runtime(cause: impl Into<String>) -> Failure {
    Failure::new("States.Runtime", cause)
}

/// Fills a Parameters/ResultSelector template: `key.$` takes the value at a path.
fn fill(template: &Value, input: &Value, context: &Value) -> Result<Value, Failure> {
    match template {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let text = v.as_str().unwrap_or_default();
                    let p = RefPath::parse(text).map_err(runtime)?;
                    let root = if p.context { context } else { input };
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

fn select(path: &Option<RefPath>, v: &Value, field: &str) -> Result<Value, Failure> {
    match path {
        None => Ok(json!({})),
        Some(p) => p
            .get(v)
            .cloned()
            .ok_or_else(|| runtime(format!("{field} `{}` matched nothing", p.text))),
    }
}

fn place(
    state: &State,
    path: &Option<RefPath>,
    raw_input: &Value,
    result: Value,
) -> Result<Value, Failure> {
    match path {
        None => Ok(raw_input.clone()),
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
    let effective = select(&state.input_path, &raw, "InputPath")?;
    match &state.kind {
        Kind::Succeed => Ok((select(&state.output_path, &effective, "OutputPath")?, None)),
        Kind::Fail { error, cause } => Err(Failure::new(error, cause.clone())),
        Kind::Choice { choices, default } => {
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
                select(&state.output_path, &effective, "OutputPath")?,
                Some(next),
            ))
        }
        Kind::Pass { result } => {
            let effective = match &state.parameters {
                Some(t) => fill(t, &effective, &ctx.context(&state.name, 0))?,
                None => effective,
            };
            let result = result.clone().unwrap_or(effective);
            let placed = place(state, &state.result_path, &raw, result)?;
            Ok((
                select(&state.output_path, &placed, "OutputPath")?,
                state.next.clone(),
            ))
        }
        Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => {
            run_with_retry(state, raw, effective, ctx).await
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
                        let mut c = ctx.context(&state.name, 0);
                        c["Map"] = json!({ "Item": { "Index": i, "Value": item } });
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
    effective: Value,
    ctx: &Ctx,
) -> Result<(Value, Option<String>), Failure> {
    let mut counts = vec![0u32; state.retry.len()];
    let mut retries = 0u32;
    loop {
        let params = match &state.parameters {
            Some(t) => fill(t, &effective, &ctx.context(&state.name, retries))?,
            None => effective.clone(),
        };
        let outcome = match attempt(state, params, ctx).await {
            Ok(result) => {
                let selected = match &state.result_selector {
                    Some(t) => fill(t, &result, &ctx.context(&state.name, retries))?,
                    None => result,
                };
                place(state, &state.result_path, &raw, selected)
                    .and_then(|placed| select(&state.output_path, &placed, "OutputPath"))
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
            let out = place(state, &c.result_path, &raw, error_output)?;
            return Ok((out, Some(c.next.clone())));
        }
        return Err(failure);
    }
}

#[cfg(test)]
mod tests;
