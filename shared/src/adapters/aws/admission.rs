//! Backpressure on new runs on AWS, kept in DynamoDB so every `api` Lambda instance sees
//! the same limits (the local server keeps them in process):
//!
//! * runs in flight: the sparse `gsi2` index lists exactly the unfinished runs; a `COUNT`
//!   query that stops at the limit says whether one more fits. The index is eventually
//!   consistent (typically well under a second behind), so requests admitted within that
//!   lag may overshoot the limit by their number — the limit protects capacity, it is not
//!   a hard quota;
//! * submissions per client: a fixed-window counter per client key (`RATE#<key>`, one item
//!   per window of `burst / rate` seconds, at most `burst` admissions each), incremented
//!   with a conditional update, expiring by `ttl`.
//!
//! A DynamoDB failure while checking admits the request (logged): the HTTP API stage's
//! own throttling still bounds the front door, and refusing every run because a limit
//! could not be read would turn a degraded store into an outage.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use time::OffsetDateTime;
use tracing::warn;

use super::dynamodb::GSI_UNFINISHED;
use crate::ports::{Admission, AdmissionGuard, Busy};

/// The limits; `None`: that limit is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AwsLimits {
    pub max_in_flight: Option<u32>,
    /// (runs per second, burst) per client.
    pub rate: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct DynamoAdmission {
    client: Client,
    table: String,
    limits: AwsLimits,
}

impl DynamoAdmission {
    pub fn new(client: Client, table: impl Into<String>, limits: AwsLimits) -> Self {
        DynamoAdmission {
            client,
            table: table.into(),
            limits,
        }
    }

    /// One more admission in this client's window, unless the window is full: then when
    /// the next window opens.
    async fn take(&self, client_key: &str, rate: u32, burst: u32) -> Result<(), Busy> {
        let window = u64::from(burst.div_ceil(rate).max(1));
        let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let index = now / window;
        let ends = (index + 1) * window;
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("RATE#{client_key}")))
            .key("sk", AttributeValue::S(index.to_string()))
            .update_expression("ADD #n :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#n) OR #n < :burst")
            .expression_attribute_names("#n", "n")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":burst", AttributeValue::N(burst.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N((ends + 60).to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Busy {
                    reason: format!(
                        "this client made {burst} submissions in {window} s (limit: {rate} per second, bursts of {burst}); nothing was created"
                    ),
                    retry_after: std::time::Duration::from_secs(ends.saturating_sub(now).max(1)),
                })
            }
            Err(e) => {
                warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "rate limit unreadable; admitting");
                Ok(())
            }
        }
    }

    /// Whether one more run fits under the in-flight limit.
    async fn room(&self, max: u32) -> Result<(), Busy> {
        let r = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI_UNFINISHED)
            .key_condition_expression("gsi2pk = :p")
            .expression_attribute_values(
                ":p",
                AttributeValue::S(super::dynamodb::UNFINISHED_PARTITION.into()),
            )
            .select(Select::Count)
            .limit(max.min(i32::MAX as u32) as i32)
            .send()
            .await;
        match r {
            Ok(out) if out.count() >= max as i32 => Err(Busy {
                reason: format!(
                    "{max} runs are in flight, the most this deployment takes at once; nothing was created"
                ),
                retry_after: std::time::Duration::from_secs(2),
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "runs in flight uncountable; admitting");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Admission for DynamoAdmission {
    async fn admit(&self, client: &str) -> Result<AdmissionGuard, Busy> {
        if let Some((rate, burst)) = self.limits.rate {
            self.take(client, rate, burst).await?;
        }
        if let Some(max) = self.limits.max_in_flight {
            self.room(max).await?;
        }
        Ok(Box::new(()))
    }
}
