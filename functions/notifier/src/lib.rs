//! The `notifier` function: each SQS message is one lifecycle event; it is pushed to every
//! WebSocket connection subscribed to its run. A connection that is gone (410) is forgotten,
//! not retried; any other push failure fails that message alone (partial batch response),
//! so SQS redelivers just it (and, on the FIFO queue, the later events of its run). Clients
//! drop a `seq` they have already seen and order by `seq`.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{TABLE_NAME, WEBSOCKET_ENDPOINT};
use campaign_shared::domain::Event;
use campaign_shared::errors::chain;
use campaign_shared::ports::{PushError, Pusher, Subscriptions};
use lambda_runtime::LambdaEvent;
use time::OffsetDateTime;
use tracing::{Instrument, info_span, warn};

pub const ENV: &[&str] = &[TABLE_NAME, WEBSOCKET_ENDPOINT];

/// Pushes one event to its subscribers.
async fn deliver(
    body: &str,
    connections: &dyn Subscriptions,
    pusher: &dyn Pusher,
) -> Result<(), String> {
    let event: Event = serde_json::from_str(body).map_err(|e| format!("not an event: {e}"))?;
    let subscribers = connections
        .subscribers(event.run_id, OffsetDateTime::now_utc())
        .await
        .map_err(|e| chain(&e))?;
    let mut failed = None;
    for conn in subscribers {
        match pusher.push(&conn, body).await {
            Ok(()) => {}
            Err(PushError::Gone(_)) => {
                let _ = connections.unsubscribe(&conn, event.run_id).await;
                let _ = connections.disconnect(&conn).await;
            }
            Err(e) => failed = Some(chain(&e)),
        }
    }
    failed.map_or(Ok(()), Err)
}

pub async fn handler(
    event: LambdaEvent<SqsEvent>,
    connections: &dyn Subscriptions,
    pusher: &dyn Pusher,
) -> Result<SqsBatchResponse, FunctionError> {
    let mut response = SqsBatchResponse::default();
    // The status queue is FIFO with one message group per run: once a message of a group
    // fails, the group's later messages in this batch are returned undelivered too, so SQS
    // redelivers them after it, in order.
    let mut held: std::collections::HashSet<String> = std::collections::HashSet::new();
    for record in event.payload.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.clone().unwrap_or_default();
        let group = record.attributes.get("MessageGroupId").cloned();
        let result = match &group {
            Some(g) if held.contains(g) => {
                Err(format!("held behind an earlier failed event of group {g}"))
            }
            _ => {
                deliver(&body, connections, pusher)
                    .instrument(info_span!("message", message_id = %id))
                    .await
            }
        };
        if let (Err(_), Some(g)) = (&result, group) {
            held.insert(g);
        }
        if let Err(e) = result {
            warn!(message_id = %id, error = %e, "event not delivered; will be retried");
            // A malformed message would fail forever: let it go to the DLQ via redrive.
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}
