//! Step Functions workflow: one execution per run, named by the run id (so a duplicate
//! start is refused by the service), stopped by StopExecution.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::SdkError;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::Value;

use crate::domain::RunId;
use crate::ports::{ExecutionEnd, ExecutionState, Workflow, WorkflowError};

/// The SDK error with its whole chain (the service's code and message, or the transport's
/// cause), not just "service error".
fn unavailable<E, R>(e: SdkError<E, R>) -> WorkflowError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    WorkflowError::Unavailable(super::sdk_failure(e))
}

#[derive(Debug, Clone)]
pub struct SfnWorkflow {
    client: Client,
    state_machine_arn: String,
}

impl SfnWorkflow {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        SfnWorkflow {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// `arn:…:stateMachine:NAME` → `arn:…:execution:NAME:RUN_ID`.
    pub fn execution_arn(&self, run_id: RunId) -> String {
        format!(
            "{}:{run_id}",
            self.state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

#[async_trait]
impl Workflow for SfnWorkflow {
    async fn start(&self, run_id: RunId, input: Value) -> Result<(), WorkflowError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(run_id.to_string())
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Err(WorkflowError::AlreadyStarted(run_id))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn stop(&self, run_id: RunId, cause: &str) -> Result<(), WorkflowError> {
        let result = self
            .client
            .stop_execution()
            .execution_arn(self.execution_arn(run_id))
            .error("Cancelled")
            .cause(cause)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Err(WorkflowError::NotFound(run_id))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn describe(&self, run_id: RunId) -> Result<ExecutionState, WorkflowError> {
        let result = self
            .client
            .describe_execution()
            .execution_arn(self.execution_arn(run_id))
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                return Ok(ExecutionState::Missing);
            }
            Err(e) => return Err(unavailable(e)),
        };
        let at = out
            .stop_date
            .and_then(|d| time::OffsetDateTime::from_unix_timestamp_nanos(d.as_nanos()).ok());
        let ended = |end| ExecutionState::Ended { end, at };
        Ok(match out.status {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => ExecutionState::Running,
            ExecutionStatus::Succeeded => ended(ExecutionEnd::Succeeded),
            ExecutionStatus::Aborted => ended(ExecutionEnd::Aborted),
            ExecutionStatus::TimedOut => ended(ExecutionEnd::TimedOut),
            ExecutionStatus::Failed => ended(ExecutionEnd::Failed {
                error: out.error.unwrap_or_else(|| "States.Runtime".into()),
                cause: out.cause.unwrap_or_else(|| "the execution failed".into()),
            }),
            // A status this SDK does not know yet: treat as still running (the next sweep
            // looks again) rather than closing a run on a guess.
            other => {
                tracing::warn!(run_id = %run_id, status = %other.as_str(), "unknown execution status");
                ExecutionState::Running
            }
        })
    }
}
