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

/// Runs younger than this are not looked at: their execution may be starting, and
/// `execution-events` normally closes a run within seconds of its execution ending.
pub const MIN_AGE: Duration = Duration::from_secs(5 * 60);

/// One sweep. The scheduled event's content is not used.
pub async fn handler(event: LambdaEvent<Value>, deps: &Deps) -> Result<Value, FunctionError> {
    sweep(event, deps, MIN_AGE).await
}

/// [`handler`] with the age threshold given (tests use zero).
pub async fn sweep(
    _event: LambdaEvent<Value>,
    deps: &Deps,
    min_age: Duration,
) -> Result<Value, FunctionError> {
    let report = usecases::sweep(deps, min_age).await?;
    tracing::info!(
        checked = report.checked,
        reconciled = report.reconciled.len(),
        "sweep done"
    );
    Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
}
