//! WebSocket fan-out in AWS: connections and per-run subscriptions kept in the table
//! (with TTL), and pushes through the API Gateway Management API.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | connection | `CONN#<connectionId>` | `CONN` |
//! | subscription | `SUB#<runId>` | `CONN#<connectionId>` |

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

use super::dynamodb::DynamoStore;
use crate::domain::RunId;
use crate::ports::{CONNECTION_TTL, PushError, Pusher, StoreError, Subscriptions};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn ttl(now: OffsetDateTime) -> AttributeValue {
    AttributeValue::N((now + CONNECTION_TTL).unix_timestamp().to_string())
}

/// [`Subscriptions`] as items of the store's table.
#[async_trait]
impl Subscriptions for DynamoStore {
    async fn connect(&self, connection_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CONN#{connection_id}")))
            .item("sk", s("CONN"))
            .item("connectionId", s(connection_id))
            .item("ttl", ttl(now))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    /// Its subscriptions are dropped lazily (on the first push that finds the connection
    /// gone) or by TTL.
    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("CONN#{connection_id}")))
            .key("sk", s("CONN"))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("SUB#{run_id}")))
            .item("sk", s(format!("CONN#{connection_id}")))
            .item("connectionId", s(connection_id))
            .item("ttl", ttl(now))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    async fn unsubscribe(&self, connection_id: &str, run_id: RunId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("SUB#{run_id}")))
            .key("sk", s(format!("CONN#{connection_id}")))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    /// DynamoDB deletes expired items only eventually, so expiry is checked here too.
    async fn subscribers(
        &self,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("SUB#{run_id}")))
                // A subscription written a moment ago must be seen, or its events are
                // pushed to nobody until the client replays.
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(super::sdk_unavailable)?;
            for item in page.items.unwrap_or_default() {
                let live = item
                    .get("ttl")
                    .and_then(|t| t.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
                    .is_none_or(|ttl| ttl > now.unix_timestamp());
                if let (true, Some(AttributeValue::S(id))) = (live, item.get("connectionId")) {
                    out.push(id.clone());
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

/// [`Pusher`] over the API Gateway Management API (`post_to_connection`).
#[derive(Debug, Clone)]
pub struct ApiGatewayPusher {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayPusher {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        ApiGatewayPusher { client }
    }
}

#[async_trait]
impl Pusher for ApiGatewayPusher {
    async fn push(&self, connection_id: &str, text: &str) -> Result<(), PushError> {
        match self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(text.as_bytes().to_vec()))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                Err(PushError::Gone(connection_id.to_string()))
            }
            Err(e) => Err(PushError::Failed(super::sdk_failure(e))),
        }
    }
}
