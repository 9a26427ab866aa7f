//! Backpressure for `campaign serve`: at most `max_in_flight` executions at once, and at
//! most `per_second` submissions per second per client (burst `burst`), each refusal a
//! [`Busy`] with the wait. Admissions are serialized while a run is created, so the
//! in-flight count cannot be overshot by concurrent requests.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::workflow::LocalWorkflow;
use crate::ports::{Admission, AdmissionGuard, Busy};

/// The limits; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Runs whose execution is going on.
    pub max_in_flight: Option<usize>,
    /// Submissions (new runs and retries) per second per client, with a burst allowance.
    pub per_second: Option<NonZeroU32>,
    pub burst: Option<NonZeroU32>,
}

/// How long a client is asked to wait when the in-flight limit is reached.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(2);

pub struct LocalAdmission {
    limits: Limits,
    workflow: Arc<LocalWorkflow>,
    gate: Arc<tokio::sync::Mutex<()>>,
    rate: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for LocalAdmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdmission")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl LocalAdmission {
    pub fn new(limits: Limits, workflow: Arc<LocalWorkflow>) -> LocalAdmission {
        let rate = limits.per_second.map(|n| {
            RateLimiter::keyed(Quota::per_second(n).allow_burst(limits.burst.unwrap_or(n)))
        });
        LocalAdmission {
            limits,
            workflow,
            gate: Arc::default(),
            rate,
            checks: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Admission for LocalAdmission {
    async fn admit(&self, client: &str) -> Result<AdmissionGuard, Busy> {
        if let (Some(rate), Some(n)) = (&self.rate, self.limits.per_second) {
            // Forget idle clients now and then, so the table stays small.
            if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
                rate.retain_recent();
            }
            if let Err(not_until) = rate.check_key(&client.to_string()) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(Busy {
                    reason: format!(
                        "more than {n} submissions per second from this client (burst {}); slow down",
                        self.limits.burst.unwrap_or(n)
                    ),
                    retry_after: wait.max(Duration::from_secs(1)),
                });
            }
        }
        let guard = self.gate.clone().lock_owned().await;
        if let Some(max) = self.limits.max_in_flight {
            let now = self.workflow.in_flight();
            if now >= max {
                return Err(Busy {
                    reason: format!(
                        "{now} runs are in flight, the limit of this server (--max-in-flight {max}); try again when some have finished"
                    ),
                    retry_after: IN_FLIGHT_RETRY,
                });
            }
        }
        Ok(Box::new(guard))
    }
}
