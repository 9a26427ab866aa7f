//! Backpressure on new runs on AWS, kept in DynamoDB so every `api` Lambda instance sees
//! the same limits (the local server keeps them in process):
//!
//! * runs in flight: the sparse `gsi2` index lists exactly the unfinished runs
//!   (`audit_pending` ones too: they are not finished); `COUNT` queries, page by page, that
//!   stop at the limit say whether one more fits. The index is eventually
//!   consistent (typically well under a second behind), so requests admitted within that
//!   lag may overshoot the limit by their number — the limit protects capacity, it is not
//!   a hard quota;
//! * submissions per client: a fixed-window counter per client key (`RATE#<key>`, one
//!   item per window of exactly `burst / rate` seconds, at most `burst` admissions each),
//!   incremented with a conditional update, expiring by `ttl`.
//!
//! A DynamoDB failure while checking admits the request (logged): the HTTP API stage's
//! own throttling still bounds the front door, and refusing every run because a limit
//! could not be read would turn a degraded store into an outage.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use time::OffsetDateTime;
use tracing::warn;

use super::dynamodb::unfinished_query;
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
        // Windows of exactly BURST/RATE seconds, in milliseconds.
        let window = (u64::from(burst) * 1000 / u64::from(rate)).max(1);
        let now = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).max(0) as u64;
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
            .expression_attribute_values(":ttl", AttributeValue::N((ends / 1000 + 60).to_string()))
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
                        "this client made {burst} submissions in {:.1} s (limit: {rate} per second, bursts of {burst}); nothing was created",
                        window as f64 / 1000.0
                    ),
                    retry_after: std::time::Duration::from_millis(ends.saturating_sub(now).max(1)),
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
        // A query page stops at 1 MB (~10k keys): count page by page, up to the limit.
        let mut counted: u32 = 0;
        let mut start = None;
        loop {
            let r = unfinished_query(&self.client, &self.table)
                .select(Select::Count)
                .limit((max - counted).min(i32::MAX as u32) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await;
            let out = match r {
                Ok(out) => out,
                Err(e) => {
                    warn!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&e), "runs in flight uncountable; admitting");
                    return Ok(());
                }
            };
            counted += out.count().max(0) as u32;
            if counted >= max {
                return Err(Busy {
                    reason: format!(
                        "{max} runs are in flight, the most this deployment takes at once; nothing was created"
                    ),
                    retry_after: std::time::Duration::from_secs(2),
                });
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(()),
            }
        }
    }
}

#[async_trait]
impl Admission for DynamoAdmission {
    async fn admit(&self, client: &str) -> Result<AdmissionGuard, Busy> {
        // Room first: a request refused for the in-flight limit uses none of its client's rate.
        if let Some(max) = self.limits.max_in_flight {
            self.room(max).await?;
        }
        if let Some((rate, burst)) = self.limits.rate {
            self.take(client, rate, burst).await?;
        }
        Ok(Box::new(()))
    }
}
