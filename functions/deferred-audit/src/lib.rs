//! The `deferred-audit` function: each message names a run whose audit was deferred.
//! Audits it and closes it; a run already completed or cancelled is left alone. While the
//! audit is still unavailable the message fails alone (partial batch response) and SQS
//! delivers it again after the visibility timeout — to the DLQ after the redrive limit.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{
    DEFERRED_AUDIT_QUEUE_URL, STATUS_QUEUE_URL, TABLE_NAME,
};
use campaign_shared::adapters::aws::sqs::DeferredAuditMessage;
use campaign_shared::errors::FlowError;
use campaign_shared::ports::Deps;
use campaign_shared::usecases;
use lambda_runtime::LambdaEvent;
use tracing::{Instrument, info_span, warn};

pub const ENV: &[&str] = &[TABLE_NAME, STATUS_QUEUE_URL, DEFERRED_AUDIT_QUEUE_URL];

pub async fn handler(
    event: LambdaEvent<SqsEvent>,
    deps: &Deps,
) -> Result<SqsBatchResponse, FunctionError> {
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.clone().unwrap_or_default();
        let result = async {
            let msg: DeferredAuditMessage = serde_json::from_str(&body).map_err(|e| {
                FlowError::InvalidInput(format!("not a deferred-audit message: {e}"))
            })?;
            usecases::deferred_audit(deps, msg.run_id).await
        }
        .instrument(info_span!("message", message_id = %id))
        .await;
        match result {
            Ok(_) | Err(FlowError::Cancelled(_)) => {}
            Err(e) => {
                warn!(message_id = %id, error = %campaign_shared::errors::Chain(&e), name = e.name(), "deferred audit not done; will be retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    Ok(response)
}
