//! Closing a run: the one loop every close goes through, and the closes that come from
//! outside the flow — a cancel, an execution stopped, failed or timed out, recovery after a
//! restart, the sweep of runs their execution left unfinished.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use super::{apply, execution_input};
use crate::domain::envelope::{self, Outcome};
use crate::domain::{Agent, AgentError, Change, Run, RunId, Status};
use crate::errors::FlowError;
use crate::ports::{Deps, ExecutionEnd, ExecutionState, StoreError};

/// What a closing step makes of a run as it finds it.
pub(super) enum Closing<T> {
    /// Nothing to write (the run is already closed, say): answer `T`.
    Done(T),
    /// Apply these changes in one batch, then answer `T`.
    Apply(Vec<Change>, T),
}

/// The one loop behind every close: reads the run, applies what `plan` makes of it, and
/// reads and plans again when another step moved the run first (a conflict while the run
/// is still open). A run closed meanwhile comes back as the store's terminal conflict.
pub(super) async fn settle<T, E: From<StoreError>>(
    deps: &Deps,
    run_id: RunId,
    mut plan: impl FnMut(Run) -> Result<Closing<T>, E>,
) -> Result<T, E> {
    for _ in 0..8 {
        let run = deps.store.get_state(run_id).await?;
        let (changes, answer) = match plan(run)? {
            Closing::Done(answer) => return Ok(answer),
            Closing::Apply(changes, answer) => (changes, answer),
        };
        match apply(deps, run_id, changes).await {
            Ok(_) => return Ok(answer),
            Err(StoreError::Conflict {
                run_terminal: false,
                ..
            }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(
        StoreError::Unavailable(format!("run {run_id} kept changing while being closed").into())
            .into(),
    )
}

/// The changes that close every agent of `run` whose status is `open` as `to`, with the
/// error `why` gives it, and the run as it will be after them.
pub(super) fn close_agents(
    run: &Run,
    open: impl Fn(Status) -> bool,
    to: Status,
    why: impl Fn(Agent) -> Option<AgentError>,
) -> (Vec<Change>, Run) {
    let mut changes = Vec::new();
    let mut after = run.clone();
    for (agent, st) in &run.agents {
        if open(st.status) {
            let error = why(*agent);
            let mut change = Change::new(*agent, st.status, to);
            if let Some(e) = &error {
                change = change.with_error(e.clone());
            }
            changes.push(change);
            if let Some(a) = after.agents.get_mut(agent) {
                a.status = to;
                if error.is_some() {
                    a.error = error;
                }
            }
        }
    }
    (changes, after)
}

/// [`settle`] for a close from outside the flow: `close` gives the changes that close an
/// open run and the answer; a run already closed — before the read, or by another step
/// between the read and the write — is left as it is and answers `closed`.
async fn close_open<T: Clone>(
    deps: &Deps,
    run_id: RunId,
    closed: T,
    mut close: impl FnMut(&Run) -> (Vec<Change>, T),
) -> Result<T, StoreError> {
    let settled = settle(deps, run_id, |run| {
        Ok::<_, StoreError>(if run.status.is_terminal() {
            Closing::Done(closed.clone())
        } else {
            let (changes, answer) = close(&run);
            Closing::Apply(changes, answer)
        })
    })
    .await;
    match settled {
        Err(StoreError::Conflict {
            run_terminal: true, ..
        }) => Ok(closed),
        other => other,
    }
}

/// Closes a run as cancelled (API cancel, or an execution aborted from the console).
/// Idempotent: a run already terminal is left alone. Returns whether this call closed it.
pub async fn close_cancelled(deps: &Deps, run_id: RunId, why: &str) -> Result<bool, StoreError> {
    close_open(deps, run_id, false, |run| {
        let (mut changes, after) =
            close_agents(run, |s| !s.is_terminal(), Status::Cancelled, |_| None);
        let env = envelope::compute(run_id, true, &after.agent_summaries());
        changes.push(
            Change::run(run.status, Status::Cancelled)
                .with_envelope(env)
                .with_detail(json!({ "outcome": "cancelled", "reason": why })),
        );
        (changes, true)
    })
    .await
}

/// Closes a run as failed (execution failed or timed out, or could not start). Agents that
/// had not produced an artifact are marked failed with the same reason; artifacts are kept.
pub async fn close_failed(
    deps: &Deps,
    run_id: RunId,
    code: &str,
    message: &str,
) -> Result<(), StoreError> {
    close_open(deps, run_id, (), |run| {
        let error = AgentError {
            code: code.into(),
            message: message.into(),
        };
        let (mut changes, after) = close_agents(
            run,
            |s| matches!(s, Status::Queued | Status::Generating),
            Status::Failed,
            |_| Some(error.clone()),
        );
        let mut env = envelope::compute(run_id, false, &after.agent_summaries());
        env.outcome = Outcome::Failure;
        env.reasons.insert(
            0,
            envelope::Reason {
                agent: None,
                code: code.into(),
                message: message.into(),
            },
        );
        changes.push(
            Change::run(run.status, Status::Failed)
                .with_envelope(env)
                .with_detail(json!({ "outcome": "failure", "error": code, "cause": message })),
        );
        (changes, ())
    })
    .await
}

/// Reconciles a run with how its execution ended: a stop from the console cancels it, a
/// failed or timed-out execution fails it with the reason. Idempotent.
#[tracing::instrument(skip_all, fields(run_id = %run_id))]
pub async fn execution_ended(
    deps: &Deps,
    run_id: RunId,
    end: ExecutionEnd,
) -> Result<(), FlowError> {
    match end {
        ExecutionEnd::Succeeded => Ok(()),
        ExecutionEnd::Aborted => {
            close_cancelled(deps, run_id, "the execution was stopped").await?;
            Ok(())
        }
        ExecutionEnd::Failed { error, cause } => {
            Ok(close_failed(deps, run_id, &error, &cause).await?)
        }
        ExecutionEnd::TimedOut => Ok(close_failed(
            deps,
            run_id,
            crate::errors::names::STATES_TIMEOUT,
            "the execution exceeded its time limit",
        )
        .await?),
    }
}

/// After a restart: every run left unfinished is resumed (its flow started again; steps
/// are idempotent, so finished agents are not redone) or handed to the deferred audit.
pub async fn recover(deps: &Deps) -> Result<Vec<RunId>, StoreError> {
    let ids = deps.store.unfinished_runs().await?;
    for &run_id in &ids {
        let run = deps.store.get_state(run_id).await?;
        if run.status == Status::AuditPending {
            deps.deferred.enqueue(run_id, Duration::ZERO).await?;
            continue;
        }
        info!(run_id = %run_id, status = %run.status, "resuming unfinished run");
        if let Err(e) = deps.workflow.start(run_id, execution_input(&run)).await {
            let why = crate::errors::chain(&e);
            warn!(run_id = %run_id, error = %why, "could not resume; closing the run");
            close_failed(
                deps,
                run_id,
                "ResumeFailed",
                &format!("could not resume after restart: {why}"),
            )
            .await?;
        }
    }
    Ok(ids)
}

/// What one sweep found and did (see [`sweep`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Unfinished runs old enough to be looked at.
    pub checked: usize,
    /// Runs closed because their execution had ended, with what was found.
    pub reconciled: Vec<(RunId, String)>,
}

/// Reconciles runs left unfinished after their execution ended — a status-change event
/// that never arrived or whose handler failed for good. Left alone: runs younger than
/// `min_age` (their execution may be starting), runs whose execution ended less than
/// `min_age` ago (its status change may still be on its way), `audit_pending` runs (the
/// deferred-audit queue owns them) and runs whose execution is still running.
#[tracing::instrument(skip_all)]
pub async fn sweep(deps: &Deps, min_age: Duration) -> Result<SweepReport, FlowError> {
    let now = deps.clock.now();
    let mut report = SweepReport::default();
    for run_id in deps.store.unfinished_runs().await? {
        let created = time::OffsetDateTime::from(run_id.ulid().datetime());
        if now - created < min_age {
            continue;
        }
        report.checked += 1;
        let run = match deps.store.get_state(run_id).await {
            Ok(run) => run,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if run.status.is_terminal() || run.status == Status::AuditPending {
            continue;
        }
        let found = match deps.workflow.describe(run_id).await? {
            ExecutionState::Running => continue,
            // Ended a moment ago: its status change may still be on its way to
            // `execution-events`, which closes the run with the same result.
            ExecutionState::Ended { at: Some(at), .. } if now - at < min_age => continue,
            ExecutionState::Ended {
                end: ExecutionEnd::Succeeded,
                ..
            } => {
                close_failed(
                    deps,
                    run_id,
                    "FlowIncomplete",
                    "the execution succeeded without closing the run",
                )
                .await?;
                "succeeded without closing the run".to_string()
            }
            ExecutionState::Ended { end, .. } => {
                let what = format!("{end:?}");
                execution_ended(deps, run_id, end).await?;
                what
            }
            ExecutionState::Missing => {
                close_failed(
                    deps,
                    run_id,
                    "WorkflowUnavailable",
                    "the run's execution was never started",
                )
                .await?;
                "no execution".to_string()
            }
        };
        warn!(run_id = %run_id, found = %found, "sweeper closed a run its execution left unfinished");
        report.reconciled.push((run_id, found));
    }
    Ok(report)
}
