//! Loading a definition strictly: every field is checked against what the engine
//! implements, of the right type and in range; what it does not implement is refused,
//! naming the construct and the state.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::model::*;
use crate::path::RefPath;

// What AWS documents for a retrier's fields when they are absent (Amazon States Language,
// "Retrying after an error"), and the largest values it accepts.
const DEFAULT_INTERVAL_SECONDS: f64 = 1.0;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const DEFAULT_BACKOFF_RATE: f64 = 2.0;
const MAX_ATTEMPTS: u64 = 99_999_999;
const MAX_SECONDS: u64 = 99_999_999;

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

/// One entry of a `Retry` or `Catch` list, checked for what every entry needs.
struct Handler<'v> {
    /// `Retry[0]`, `Catch[1]`: how messages name it.
    field: String,
    obj: &'v Map<String, Value>,
    errors: Vec<String>,
}

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

    /// A number of seconds: a positive whole number, as ASL requires of every `…Seconds`.
    fn seconds(&self, v: Option<&Value>, field: &str) -> Result<Option<f64>, LoadError> {
        Ok(self.whole(v, field, 1, MAX_SECONDS)?.map(|n| n as f64))
    }

    /// A whole number in `min..=max`, if given.
    fn whole(
        &self,
        v: Option<&Value>,
        field: &str,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, LoadError> {
        match v {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.err(format!(
                    "{field} must be a whole number from {min} to {max}, not {v}"
                ))),
            },
        }
    }

    /// A string field, if given; any other JSON type is refused.
    fn string<'v>(&self, v: Option<&'v Value>, field: &str) -> Result<Option<&'v str>, LoadError> {
        match v {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.err(format!("{field} must be a string, not {other}"))),
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

    /// The entries of a `Retry` or `Catch` list (`list`): objects of only `allowed`
    /// fields, each with its name (`Retry[0]`) and its ErrorEquals — a `States.ALL` entry
    /// only last.
    fn handlers<'v>(
        &self,
        v: Option<&'v Value>,
        list: &str,
        allowed: &[&str],
    ) -> Result<Vec<Handler<'v>>, LoadError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let arr = v
            .as_array()
            .ok_or_else(|| self.err(format!("{list} must be an array")))?;
        let mut out = Vec::new();
        for (i, h) in arr.iter().enumerate() {
            let field = format!("{list}[{i}]");
            let obj = h
                .as_object()
                .ok_or_else(|| self.err(format!("{field} must be an object")))?;
            if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(self.err(format!(
                    "{field}: `{k}` is not supported by the local engine"
                )));
            }
            self.string(obj.get("Comment"), &format!("{field}: Comment"))?;
            let errors = self.errors_list(h, &field)?;
            if errors.iter().any(|e| e == "States.ALL") && i + 1 != arr.len() {
                return Err(self.err(format!("{field}: a States.ALL entry must be the last")));
            }
            out.push(Handler { field, obj, errors });
        }
        Ok(out)
    }

    fn retriers(&self, v: Option<&Value>) -> Result<Vec<Retrier>, LoadError> {
        let allowed = [
            "ErrorEquals",
            "IntervalSeconds",
            "MaxAttempts",
            "BackoffRate",
            "MaxDelaySeconds",
            "Comment",
        ];
        let mut out = Vec::new();
        for Handler { field, obj, errors } in self.handlers(v, "Retry", &allowed)? {
            let backoff = match obj.get("BackoffRate") {
                None => DEFAULT_BACKOFF_RATE,
                Some(b) => b.as_f64().filter(|b| *b >= 1.0).ok_or_else(|| {
                    self.err(format!(
                        "{field}: BackoffRate must be a number of at least 1.0, not {b}"
                    ))
                })?,
            };
            out.push(Retrier {
                errors,
                interval: self
                    .seconds(
                        obj.get("IntervalSeconds"),
                        &format!("{field}: IntervalSeconds"),
                    )?
                    .unwrap_or(DEFAULT_INTERVAL_SECONDS),
                max_attempts: self
                    .whole(
                        obj.get("MaxAttempts"),
                        &format!("{field}: MaxAttempts"),
                        0,
                        MAX_ATTEMPTS,
                    )?
                    .map_or(DEFAULT_MAX_ATTEMPTS, |n| n as u32),
                backoff,
                max_delay: self.seconds(
                    obj.get("MaxDelaySeconds"),
                    &format!("{field}: MaxDelaySeconds"),
                )?,
            });
        }
        Ok(out)
    }

    fn catchers(&self, v: Option<&Value>) -> Result<Vec<Catcher>, LoadError> {
        let allowed = ["ErrorEquals", "ResultPath", "Next", "Comment"];
        let mut out = Vec::new();
        for Handler { field, obj, errors } in self.handlers(v, "Catch", &allowed)? {
            out.push(Catcher {
                errors,
                result_path: self.path(obj.get("ResultPath"), "ResultPath")?,
                next: self
                    .string(obj.get("Next"), &format!("{field}: Next"))?
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
        self.string(obj.get("Comment"), "Comment")?;
        let next = self.string(obj.get("Next"), "Next")?.map(str::to_string);
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
    for field in ["Comment", "Version"] {
        top_loader.string(obj.get(field), field)?;
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
        let next = l.string(so.get("Next"), "Next")?.map(str::to_string);
        let end = match so.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(l.err(format!("End must be true or false, not {other}"))),
        };
        l.string(so.get("Comment"), "Comment")?;
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
                resource: l
                    .string(so.get("Resource"), "Resource")?
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
                    default: l.string(so.get("Default"), "Default")?.map(str::to_string),
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
                // Both optional in ASL; an execution failed without them reports these.
                error: l
                    .string(so.get("Error"), "Error")?
                    .unwrap_or("States.Fail")
                    .to_string(),
                cause: l
                    .string(so.get("Cause"), "Cause")?
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
    /// Parses and checks a definition, refusing what the engine does not implement. `name`
    /// is the state machine's name, as its executions report it.
    pub fn load(name: &str, definition: &str) -> Result<StateMachine, LoadError> {
        let v: Value = serde_json::from_str(definition).map_err(|e| LoadError {
            state: None,
            message: format!("not JSON: {e}"),
        })?;
        let timeout = Loader { state: None }.seconds(v.get("TimeoutSeconds"), "TimeoutSeconds")?;
        Ok(StateMachine {
            name: name.into(),
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
}
