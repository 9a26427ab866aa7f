//! Step Functions workflow: one execution per run, named by the run id (so a duplicate
//! start is refused by the service), stopped by StopExecution.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::ProvideErrorMetadata;
use serde_json::Value;

use crate::domain::RunId;
use crate::ports::{Workflow, WorkflowError};

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
            Err(e) if e.code() == Some("ExecutionAlreadyExists") => {
                Err(WorkflowError::AlreadyStarted(run_id))
            }
            Err(e) => Err(WorkflowError::Unavailable(
                aws_sdk_sfn::error::DisplayErrorContext(&e).to_string(),
            )),
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
            Err(e) if e.code() == Some("ExecutionDoesNotExist") => {
                Err(WorkflowError::NotFound(run_id))
            }
            Err(e) => Err(WorkflowError::Unavailable(
                aws_sdk_sfn::error::DisplayErrorContext(&e).to_string(),
            )),
        }
    }
}
