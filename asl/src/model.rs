//! The engine's model of a definition: states, their kinds, retriers and catchers, and the
//! errors a load or an execution ends in.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::path::RefPath;

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
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) cause: String,
}

impl Failure {
    pub(crate) fn new(error: &str, cause: impl Into<String>) -> Self {
        Failure {
            error: error.into(),
            cause: cause.into(),
        }
    }
    /// States.Runtime and the like end the execution: no Retry or Catch applies.
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(
            self.error.as_str(),
            "States.Runtime" | "States.DataLimitExceeded"
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Retrier {
    pub(crate) errors: Vec<String>,
    pub(crate) interval: f64,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: f64,
    pub(crate) max_delay: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Catcher {
    pub(crate) errors: Vec<String>,
    pub(crate) result_path: Option<RefPath>,
    pub(crate) next: String,
}

#[derive(Debug, Clone)]
pub(crate) enum ChoiceRule {
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
pub(crate) enum Kind {
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
pub(crate) struct State {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) next: Option<String>,
    pub(crate) input_path: Option<RefPath>,
    pub(crate) output_path: Option<RefPath>,
    pub(crate) result_path: Option<RefPath>,
    pub(crate) parameters: Option<Value>,
    pub(crate) result_selector: Option<Value>,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
}

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) start_at: String,
    pub(crate) states: HashMap<String, State>,
}

/// A loaded definition, with the name its executions report (`$$.StateMachine.Name`).
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub(crate) name: Arc<str>,
    pub(crate) root: Arc<Machine>,
    pub(crate) timeout: Option<f64>,
    pub(crate) time_scale: f64,
}
