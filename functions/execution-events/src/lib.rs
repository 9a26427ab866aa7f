//! The `execution-events` function: EventBridge "Step Functions Execution Status Change"
//! events of our state machine. ABORTED (a stop from the console) cancels the run,
//! FAILED / TIMED_OUT fail it with the reason; completed artifacts are kept. The execution
//! name is the run id. Idempotent: a run already terminal is left as it is.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{STATUS_QUEUE_URL, TABLE_NAME};
use campaign_shared::domain::RunId;
use campaign_shared::errors::FlowError;
use campaign_shared::ports::Deps;
use campaign_shared::usecases::{self, ExecutionEnd};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const ENV: &[&str] = &[TABLE_NAME, STATUS_QUEUE_URL];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusChange {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

pub async fn handler(
    event: LambdaEvent<EventBridgeEvent<StatusChange>>,
    deps: &Deps,
) -> Result<Value, FunctionError> {
    let detail = event.payload.detail;
    let run_id = RunId::parse(&detail.name).map_err(|e| FlowError::InvalidInput(e.to_string()))?;
    let end = match detail.status.as_str() {
        "ABORTED" => ExecutionEnd::Aborted,
        "TIMED_OUT" => ExecutionEnd::TimedOut,
        "FAILED" => ExecutionEnd::Failed {
            error: detail.error.unwrap_or_else(|| "States.Runtime".into()),
            cause: detail
                .cause
                .unwrap_or_else(|| "the execution failed".into()),
        },
        // RUNNING, SUCCEEDED…: the flow itself recorded what happened.
        _ => ExecutionEnd::Succeeded,
    };
    match usecases::execution_ended(deps, run_id, end).await {
        Ok(()) => {}
        // An execution of a run we never stored (e.g. started by hand): nothing to do.
        Err(FlowError::InvalidInput(m)) => {
            tracing::warn!(run_id = %run_id, %m, "status change for an unknown run")
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json!({ "runId": run_id, "status": detail.status }))
}
