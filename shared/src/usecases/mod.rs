//! Use cases: what the API does (submit, cancel, retry, brand kits — [`api`]), what each
//! Task of `statemachine.asl.json` does (agent, audit, finalize — [`steps`]), and how a run
//! is closed from outside its flow (cancel, a stopped or failed execution, recovery, the
//! sweep — [`close`]). Lambdas and the local engine call exactly these functions; they are
//! written to be idempotent, because Step Functions and SQS deliver at least once and a
//! restarted process re-runs unfinished flows.

mod api;
mod close;
mod steps;

pub use crate::ports::ExecutionEnd;
pub use api::{cancel, create_brand, replace_brand, retry, retry_as, submit, submit_as};
pub use close::{SweepReport, close_cancelled, close_failed, execution_ended, recover, sweep};
pub use steps::{TaskFunction, audit_step, deferred_audit, finalize, run_agent};

use std::time::Duration;

use serde_json::{Value, json};
use tracing::warn;

use crate::domain::{Agent, AgentSample, Change, Event, ExecutionMode, Run, RunId, Scope, Status};
use crate::observe;
use crate::ports::{BrandError, Deps, StoreError};

/// Delay before a deferred audit is tried (again).
pub const DEFERRED_AUDIT_DELAY: Duration = Duration::from_secs(30);

/// Errors of the API-facing use cases, mapped to HTTP statuses by the API layers.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("run {0} not found")]
    NotFound(RunId),
    /// Something other than a run is not there (a brand kit).
    #[error("{0}")]
    Missing(String),
    /// The run is already terminal (cancel) or not yet terminal (retry).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] crate::ports::Cause),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => AppError::NotFound(id),
            StoreError::BadCursor(_) => AppError::Invalid(e.to_string()),
            StoreError::Conflict { .. } | StoreError::AlreadyExists(_) => {
                AppError::Conflict(e.to_string())
            }
            StoreError::Unavailable(_) | StoreError::Corrupt { .. } => {
                AppError::Unavailable(Box::new(e))
            }
        }
    }
}

/// Errors of the brand library's use cases (404 / 409 / 503 in HTTP).
impl From<BrandError> for AppError {
    fn from(e: BrandError) -> Self {
        match e {
            BrandError::NotFound(_) => AppError::Missing(e.to_string()),
            BrandError::AlreadyExists(_) | BrandError::VersionMismatch { .. } => {
                AppError::Conflict(e.to_string())
            }
            BrandError::Store(s) => s.into(),
        }
    }
}

/// The input of every execution: references, the mode, and the agents' order (the
/// sequential path runs them in that order).
pub fn execution_input(run: &Run) -> Value {
    input_of(run.run_id, run.execution_mode, &run.brief.priority)
}

fn input_of(run_id: RunId, mode: ExecutionMode, priority: &[Agent]) -> Value {
    json!({ "runId": run_id, "executionMode": mode.as_str(), "priority": priority })
}

/// Applies a batch of changes, then tells: one log line per transition, the published
/// events, and the run's metrics when the batch closed it.
async fn apply(deps: &Deps, run_id: RunId, changes: Vec<Change>) -> Result<Vec<Event>, StoreError> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let moves = moves_of(&changes);
    let events = deps.store.apply(run_id, changes, deps.clock.now()).await?;
    tell(deps, run_id, &moves, &events).await;
    Ok(events)
}

/// [`apply`], with an agent's generator-call sample written beside the batch (one round
/// trip to the store). The sample is best effort: its failure is logged, never raised.
async fn apply_sampled(
    deps: &Deps,
    run_id: RunId,
    changes: Vec<Change>,
    sample: AgentSample,
) -> Result<Vec<Event>, StoreError> {
    let moves = moves_of(&changes);
    let agent = sample.agent;
    let (events, sampled) = deps
        .store
        .apply_with_sample(run_id, changes, deps.clock.now(), sample)
        .await;
    if let Err(e) = sampled {
        warn!(agent = %agent, error = %crate::errors::Chain(&e), "agent sample not recorded");
    }
    let events = events?;
    tell(deps, run_id, &moves, &events).await;
    Ok(events)
}

fn moves_of(changes: &[Change]) -> Vec<(Scope, Option<Status>)> {
    changes.iter().map(|c| (c.scope, Some(c.from))).collect()
}

/// What follows an applied batch: the log lines, the published events, the closed run's
/// metrics.
async fn tell(deps: &Deps, run_id: RunId, moves: &[(Scope, Option<Status>)], events: &[Event]) {
    observe::transitions(moves, events);
    deps.publisher.publish(events).await;
    if events
        .iter()
        .any(|e| e.scope == Scope::Run && e.status.is_terminal())
    {
        // Metrics are best effort: a failed read never fails the transition it reports.
        match deps.store.closed_run(run_id).await {
            Ok(run) => observe::run_closed(&run),
            Err(e) => {
                warn!(run_id = %run_id, error = %crate::errors::Chain(&e), "metrics of the closed run not recorded")
            }
        }
    }
}
