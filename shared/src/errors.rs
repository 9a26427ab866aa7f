//! The one place where failures get their stable names — the Lambda `errorType` that the
//! ASL's Retry/Catch match, and that the local engine matches the same way.

use crate::ports::{AuditUnavailable, GeneratorError, StoreError, WorkflowError};

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
            | StoreError::AlreadyExists(_) => FlowError::Transient(e.to_string()),
            StoreError::Corrupt(_) => FlowError::AgentFailed(e.to_string()),
        }
    }
}

impl From<GeneratorError> for FlowError {
    fn from(e: GeneratorError) -> Self {
        match e {
            GeneratorError::Transient(m) => FlowError::Transient(m),
            GeneratorError::Failed(m) => FlowError::AgentFailed(m),
        }
    }
}

impl From<AuditUnavailable> for FlowError {
    fn from(e: AuditUnavailable) -> Self {
        FlowError::AuditUnavailable(e.0)
    }
}

impl From<WorkflowError> for FlowError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Unavailable(_) => FlowError::Transient(e.to_string()),
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
