//! The Task functions of `statemachine.asl.json`. Each binary is one function; all run the
//! same handler over a different use case, so they share this crate.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{
    BEDROCK_MODEL_ID, DEFERRED_AUDIT_QUEUE_URL, STATUS_QUEUE_URL, TABLE_NAME,
};
use campaign_shared::ports::Deps;
use campaign_shared::usecases::TaskFunction;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// Environment variables each Task function reads.
pub fn env(function: TaskFunction) -> &'static [&'static str] {
    match function {
        TaskFunction::Finalize => &[TABLE_NAME, STATUS_QUEUE_URL, DEFERRED_AUDIT_QUEUE_URL],
        TaskFunction::Agent(_) => &[TABLE_NAME, STATUS_QUEUE_URL, BEDROCK_MODEL_ID],
        _ => &[TABLE_NAME, STATUS_QUEUE_URL],
    }
}

/// Time kept back from the function's deadline to record a given-up generator call and
/// answer.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// When the step must give up: the invocation's deadline (ms since the epoch; 0 when
/// unknown) less [`DEADLINE_MARGIN`].
pub fn step_deadline(deadline_ms: u64) -> Option<tokio::time::Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_millis(deadline_ms).saturating_sub(now);
    Some(tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// One invocation by Step Functions: the payload the ASL's `Parameters` built.
#[tracing::instrument(skip_all, fields(function = function.substitution(), request_id = %event.context.request_id))]
pub async fn handler(
    function: TaskFunction,
    event: LambdaEvent<Value>,
    deps: &Deps,
) -> Result<Value, FunctionError> {
    let deadline = step_deadline(event.context.deadline);
    Ok(function.call_until(deps, event.payload, deadline).await?)
}

/// The whole `main` of a Task function.
pub async fn main(function: TaskFunction) -> Result<(), lambda_runtime::Error> {
    let metrics = campaign_lambda::init();
    let config = campaign_lambda::config_or_exit(env(function));
    let clients = campaign_shared::runtime::aws::Clients::load().await;
    let deps = campaign_shared::runtime::aws::deps(&config, &clients).await?;
    campaign_lambda::run(
        metrics,
        lambda_runtime::service_fn(move |event| {
            let deps = deps.clone();
            async move { handler(function, event, &deps).await }
        }),
    )
    .await
}
