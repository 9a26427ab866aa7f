//! SQS adapters: the status-event publisher (events → status queue → notifier) and the
//! deferred-audit queue.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::domain::{Event, RunId};
use crate::ports::{DeferredAudits, EventPublisher, StoreError};

/// Publishes persisted events to the status queue, ten per request. Best effort by
/// contract: a failure is logged, never fails the transition (clients replay from the
/// store with `after`). On a FIFO queue (the template's) each run is one message group,
/// so its events reach the notifier in `seq` order, and `runId-seq` deduplicates a
/// re-publish.
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: Client,
    queue_url: String,
    fifo: bool,
}

impl SqsPublisher {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        let queue_url = queue_url.into();
        SqsPublisher {
            client,
            fifo: queue_url.ends_with(".fifo"),
            queue_url,
        }
    }
}

#[async_trait]
impl EventPublisher for SqsPublisher {
    async fn publish(&self, events: &[Event]) {
        for chunk in events.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, e) in chunk.iter().enumerate() {
                let Ok(body) = serde_json::to_string(e) else {
                    continue;
                };
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body);
                if self.fifo {
                    entry = entry
                        .message_group_id(e.run_id.to_string())
                        .message_deduplication_id(format!("{}-{}", e.run_id, e.seq));
                }
                match entry.build() {
                    Ok(entry) => entries.push(entry),
                    Err(err) => {
                        warn!(error = %crate::errors::Chain(&err), "cannot build status message")
                    }
                }
            }
            let result = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(out) if !out.failed.is_empty() => {
                    warn!(
                        failed = out.failed.len(),
                        "some status events were not queued"
                    );
                }
                Ok(_) => {}
                Err(err) => {
                    warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "status events not queued")
                }
            }
        }
    }
}

/// The message on the deferred-audit queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredAuditMessage {
    pub run_id: RunId,
}

/// The deferred-audit queue; SQS delays a message by at most 15 minutes.
#[derive(Debug, Clone)]
pub struct SqsDeferredAudits {
    client: Client,
    queue_url: String,
}

impl SqsDeferredAudits {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsDeferredAudits {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl DeferredAudits for SqsDeferredAudits {
    async fn enqueue(&self, run_id: RunId, delay: Duration) -> Result<(), StoreError> {
        let body = serde_json::to_string(&DeferredAuditMessage { run_id })
            .map_err(|e| StoreError::corrupt("deferred audit message", e))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay.as_secs().min(900) as i32)
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }
}
