//! The one place where failures get their stable names — the Lambda `errorType` that the
//! ASL's Retry/Catch match, and that the local engine matches the same way — and how a
//! failure is shown whole: with what was being done ([`context`]) and every cause
//! ([`Chain`]).

use std::fmt;

use crate::ports::{AuditUnavailable, Cause, GeneratorError, StoreError, WorkflowError};

/// `e` as the cause of a failure while doing `context`: shown as `context: e`.
pub fn context(context: impl Into<String>, e: impl Into<Cause>) -> Cause {
    let e = e.into();
    shown_as(format!("{}: {e}", context.into()), e)
}

/// An error shown as `text` (an SDK error's whole context, say, where its own message is
/// "service error"), kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{text}")]
pub struct Shown {
    text: String,
    #[source]
    source: Cause,
}

/// `e` as a cause shown as `text`.
pub fn shown_as(text: String, e: impl Into<Cause>) -> Cause {
    Box::new(Shown {
        text,
        source: e.into(),
    })
}

/// An error with its whole source chain, `outer: inner: root` — what a log line or an
/// error message shows. A cause whose text an outer error already shows is not repeated
/// (the project's errors show their immediate cause; the SDK's and HTTP clients' do not).
#[derive(Debug)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            next = cause.source();
        }
        f.write_str(&shown)
    }
}

/// `e` with its whole chain, as text.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    Chain(e).to_string()
}

/// Error names, as written in `statemachine.asl.json`.
pub mod names {
    pub const TRANSIENT: &str = "Transient";
    pub const INVALID_INPUT: &str = "InvalidInput";
    pub const AGENT_FAILED: &str = "AgentFailed";
    pub const AUDIT_UNAVAILABLE: &str = "AuditUnavailable";
    pub const CANCELLED: &str = "Cancelled";
    pub const STATES_TIMEOUT: &str = "States.Timeout";
}

/// A failure of a step of the flow, with its stable name.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Worth retrying with backoff: throttling, a store or network hiccup.
    #[error("{0}")]
    Transient(String),
    /// The request cannot succeed as sent (unknown run, malformed payload).
    #[error("{0}")]
    InvalidInput(String),
    /// The agent failed in a way a retry of the same step will not fix.
    #[error("{0}")]
    AgentFailed(String),
    /// The audit step cannot run now; the run is deferred, not lost.
    #[error("{0}")]
    AuditUnavailable(String),
    /// The run was cancelled (or otherwise closed) while this step ran.
    #[error("{0}")]
    Cancelled(String),
}

impl FlowError {
    pub fn name(&self) -> &'static str {
        match self {
            FlowError::Transient(_) => names::TRANSIENT,
            FlowError::InvalidInput(_) => names::INVALID_INPUT,
            FlowError::AgentFailed(_) => names::AGENT_FAILED,
            FlowError::AuditUnavailable(_) => names::AUDIT_UNAVAILABLE,
            FlowError::Cancelled(_) => names::CANCELLED,
        }
    }
}

impl From<StoreError> for FlowError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::BadCursor(_) => {
                FlowError::InvalidInput(e.to_string())
            }
            StoreError::Conflict {
                run_terminal: true, ..
            } => FlowError::Cancelled(format!("the run is already closed: {e}")),
            // A conflict means another writer moved the state first; re-reading on retry
            // sees it and the step becomes a no-op.
            StoreError::Conflict { .. }
            | StoreError::Unavailable(_)
            | StoreError::AlreadyExists(_) => FlowError::Transient(chain(&e)),
            StoreError::Corrupt { .. } => FlowError::AgentFailed(chain(&e)),
        }
    }
}

impl From<GeneratorError> for FlowError {
    fn from(e: GeneratorError) -> Self {
        match e {
            GeneratorError::Transient(m) => FlowError::Transient(chain(&*m)),
            GeneratorError::Failed(m) => FlowError::AgentFailed(chain(&*m)),
        }
    }
}

impl From<AuditUnavailable> for FlowError {
    fn from(e: AuditUnavailable) -> Self {
        FlowError::AuditUnavailable(chain(&e))
    }
}

impl From<WorkflowError> for FlowError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Unavailable(_) => FlowError::Transient(chain(&e)),
            WorkflowError::AlreadyStarted(_) | WorkflowError::NotFound(_) => {
                FlowError::InvalidInput(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RunId, Scope, Status};

    #[test]
    fn a_conflict_with_a_closed_run_is_named_cancelled() {
        let e: FlowError = StoreError::Conflict {
            run_id: RunId::new(),
            scope: Scope::Copy,
            expected: Status::Generating,
            actual: Status::Cancelled,
            run_terminal: true,
        }
        .into();
        assert_eq!(e.name(), "Cancelled");
    }

    #[test]
    fn generator_errors_keep_their_retryability() {
        assert_eq!(
            FlowError::from(GeneratorError::Transient("x".into())).name(),
            "Transient"
        );
        assert_eq!(
            FlowError::from(GeneratorError::Failed("x".into())).name(),
            "AgentFailed"
        );
    }
}
