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

use crate::domain::RunId;
use crate::ports::StoreError;

/// API Gateway closes a WebSocket connection after two hours; records live that long.
pub const CONNECTION_TTL_SECS: i64 = 2 * 60 * 60;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Connection and subscription records.
#[derive(Debug, Clone)]
pub struct Connections {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Connections {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Connections {
            client,
            table: table.into(),
        }
    }

    fn ttl(now: OffsetDateTime) -> AttributeValue {
        AttributeValue::N((now.unix_timestamp() + CONNECTION_TTL_SECS).to_string())
    }

    pub async fn connect(
        &self,
        connection_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CONN#{connection_id}")))
            .item("sk", s("CONN"))
            .item("connectionId", s(connection_id))
            .item("ttl", Self::ttl(now))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    /// Forgets the connection; its subscriptions are dropped lazily (on the first push
    /// that finds it gone) or by TTL.
    pub async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
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

    pub async fn subscribe(
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
            .item("ttl", Self::ttl(now))
            .send()
            .await
            .map_err(super::sdk_unavailable)?;
        Ok(())
    }

    pub async fn unsubscribe(&self, connection_id: &str, run_id: RunId) -> Result<(), StoreError> {
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

    /// Connection ids subscribed to `run_id` whose records have not expired at `now`
    /// (DynamoDB deletes expired items only eventually, so expiry is checked here too).
    pub async fn subscribers(
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

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// 410: the client went away; forget the connection, do not retry.
    #[error("connection {0} is gone")]
    Gone(String),
    #[error("push failed: {0}")]
    Failed(#[source] crate::ports::Cause),
}

/// Sends one message to one connection.
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn push(&self, connection_id: &str, text: &str) -> Result<(), PushError>;
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
