//! The `sweeper` function, run by an EventBridge schedule: runs that are still unfinished
//! although their Step Functions execution has ended (the status-change event was lost, or
//! `execution-events` failed it for good) are closed the way `execution-events` would have
//! closed them, after `DescribeExecution` says how the execution ended.

use std::time::Duration;

use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{STATE_MACHINE_ARN, STATUS_QUEUE_URL, TABLE_NAME};
use campaign_shared::ports::Deps;
use campaign_shared::usecases;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

pub const ENV: &[&str] = &[TABLE_NAME, STATUS_QUEUE_URL, STATE_MACHINE_ARN];

/// Runs younger than this, or whose execution ended less than this ago, are not looked at:
/// their execution may be starting, and `execution-events` normally closes a run within
/// seconds of its execution ending.
pub const MIN_AGE: Duration = Duration::from_secs(5 * 60);

/// What a sweep is asked: the schedule sends `{}`; an operator (or a test) may invoke the
/// function with `{"minAgeSeconds": N}` to look at younger runs.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepRequest {
    pub min_age_seconds: Option<u64>,
}

/// One sweep. A scheduled event's own fields (`source`, `detail`, …) are ignored.
pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    // No payload at all is a sweep with the defaults too.
    let request: SweepRequest = match event.payload {
        Value::Null => SweepRequest::default(),
        payload => serde_json::from_value(payload).map_err(|e| FunctionError {
            name: "InvalidInput",
            message: format!("minAgeSeconds must be a whole number of seconds: {e}"),
        })?,
    };
    let min_age = request.min_age_seconds.map_or(MIN_AGE, Duration::from_secs);
    let report = usecases::sweep(deps, min_age).await?;
    tracing::info!(
        checked = report.checked,
        reconciled = report.reconciled.len(),
        min_age_seconds = min_age.as_secs(),
        "sweep done"
    );
    Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
}
