//! The `trigger` function: an EventBridge custom event (detail-type `CampaignRequested`,
//! detail = a brief) starts a run. The event id is claimed first, so a duplicate delivery
//! returns the run the first delivery started instead of starting another.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{
    MODE_POLICY, STATE_MACHINE_ARN, STATUS_QUEUE_URL, TABLE_NAME,
};
use campaign_shared::domain::{Brief, RunId};
use campaign_shared::errors::{FlowError, chain};
use campaign_shared::ports::Deps;
use campaign_shared::usecases::{self, AppError};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

pub const ENV: &[&str] = &[TABLE_NAME, STATUS_QUEUE_URL, STATE_MACHINE_ARN, MODE_POLICY];
pub const DETAIL_TYPE: &str = "CampaignRequested";
/// How long an event id is remembered (EventBridge redelivers within 24 hours).
pub const EVENT_KEY_TTL: time::Duration = time::Duration::days(7);

pub async fn handler(
    event: LambdaEvent<EventBridgeEvent<Value>>,
    deps: &Deps,
) -> Result<Value, FunctionError> {
    let ev = event.payload;
    if ev.detail_type != DETAIL_TYPE {
        return Err(FlowError::InvalidInput(format!(
            "detail-type `{}`; this function takes `{DETAIL_TYPE}`",
            ev.detail_type
        ))
        .into());
    }
    let key = ev
        .id
        .ok_or_else(|| FlowError::InvalidInput("the event has no id".into()))?;
    // A brief that fails validation will fail on every delivery: report it by name so the
    // failure destination holds the reasons.
    let brief =
        Brief::from_value(&ev.detail).map_err(|e| FlowError::InvalidInput(e.to_string()))?;
    let now = deps.clock.now();
    let run_id = deps
        .keys
        .claim_key(
            &format!("event:{key}"),
            "",
            RunId::new(),
            now,
            now + EVENT_KEY_TTL,
        )
        .await?
        .run_id;
    let run_id = usecases::submit_as(deps, run_id, brief, None)
        .await
        .map_err(|e| match &e {
            AppError::Unavailable(_) => FlowError::Transient(chain(&e)),
            other => FlowError::InvalidInput(other.to_string()),
        })?;
    Ok(json!({ "runId": run_id, "eventId": key }))
}
