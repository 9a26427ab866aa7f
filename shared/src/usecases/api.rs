//! What the API (and the trigger) asks: submit a brief, cancel, retry, the brand library.

use serde_json::Value;
use tracing::{info, warn};

use super::close::{close_cancelled, close_failed};
use super::{AppError, execution_input, input_of};
use crate::domain::{
    Agent, ArtifactId, BrandInput, BrandKit, Brief, ExecutionMode, ModeDecision, Run, RunId, Scope,
    Status,
};
use crate::errors::chain;
use crate::observe;
use crate::ports::{BrandError, Deps, NewRun, StoreError, WorkflowError};

/// Creates a run and starts its flow. `parent` makes it a retry iteration that reuses the
/// listed artifacts.
#[tracing::instrument(skip_all)]
pub async fn submit(
    deps: &Deps,
    brief: Brief,
    parent: Option<(&Run, Vec<(Agent, ArtifactId)>)>,
) -> Result<RunId, AppError> {
    create_and_start(deps, RunId::new(), brief, parent).await
}

/// [`submit`] with a run id chosen by the caller (an idempotent trigger). Submitting the
/// same id again does not create a second run; it only makes sure the flow was started.
pub async fn submit_as(
    deps: &Deps,
    run_id: RunId,
    brief: Brief,
    parent: Option<(&Run, Vec<(Agent, ArtifactId)>)>,
) -> Result<RunId, AppError> {
    // A repeated request finds its run as it was created: its brand kit version and mode
    // are not decided again (a kit deleted since must not turn it into a 400).
    match deps.store.get_state(run_id).await {
        Ok(existing) => start_existing(deps, &existing).await,
        Err(StoreError::NotFound(_)) => create_and_start(deps, run_id, brief, parent).await,
        Err(e) => Err(e.into()),
    }
}

/// Starts the flow of a run that exists but may not have started (its creator died
/// between the two writes); a run past `queued` has started and is left alone.
async fn start_existing(deps: &Deps, run: &Run) -> Result<RunId, AppError> {
    if run.status != Status::Queued {
        return Ok(run.run_id);
    }
    start_flow(deps, run.run_id, execution_input(run)).await
}

/// Starts a created run's execution. A failure to start closes the run with the reason
/// (nothing hangs in `queued`) and answers 503.
async fn start_flow(deps: &Deps, run_id: RunId, input: Value) -> Result<RunId, AppError> {
    match deps.workflow.start(run_id, input).await {
        Ok(()) | Err(WorkflowError::AlreadyStarted(_)) => Ok(run_id),
        Err(other) => {
            let why = chain(&other);
            warn!(run_id = %run_id, error = %why, "could not start the flow");
            close_failed(deps, run_id, "WorkflowUnavailable", &why).await?;
            Err(AppError::Unavailable(Box::new(other)))
        }
    }
}

async fn create_and_start(
    deps: &Deps,
    run_id: RunId,
    brief: Brief,
    parent: Option<(&Run, Vec<(Agent, ArtifactId)>)>,
) -> Result<RunId, AppError> {
    let mut brief = brief;
    if brief.mode_defaulted {
        brief.execution_mode = deps.mode_policy.default_mode;
        brief.mode_defaulted = false;
    }
    if brief.brand_id.is_some() && brief.brand_version.is_none() {
        brief = with_brand(deps, brief).await?;
    }
    let (mode, mode_decision) = match brief.execution_mode {
        ExecutionMode::Auto => {
            let d = decide_mode(deps).await;
            (d.mode, Some(d))
        }
        m => (m, None),
    };
    let priority = brief.priority.clone();
    let (parent_run_id, iteration, reuse) = match parent {
        Some((p, reuse)) => (Some(p.run_id), p.iteration + 1, reuse),
        None => (None, 1, Vec::new()),
    };
    let created = deps
        .store
        .create_run(NewRun {
            run_id,
            parent_run_id,
            iteration,
            brief,
            execution_mode: mode,
            mode_decision: mode_decision.clone(),
            reuse,
            created_at: deps.clock.now(),
        })
        .await;
    match created {
        Ok(first) => {
            match &mode_decision {
                Some(d) => {
                    info!(run_id = %run_id, iteration, mode = %mode.as_str(), reason = %d.reason, "run created (auto mode)")
                }
                None => info!(run_id = %run_id, iteration, mode = %mode.as_str(), "run created"),
            }
            observe::transitions(&[(Scope::Run, None)], std::slice::from_ref(&first));
            observe::run_started();
            deps.publisher.publish(&[first]).await;
        }
        Err(StoreError::AlreadyExists(_)) => {
            // Created meanwhile by a concurrent request with the same id.
            let existing = deps.store.get_state(run_id).await?;
            return start_existing(deps, &existing).await;
        }
        Err(e) => return Err(e.into()),
    }
    start_flow(deps, run_id, input_of(run_id, mode, &priority)).await
}

/// The brief with its brand kit applied (the kit's current version). An unknown kit or a
/// merge over a brief's limits is the client's to fix (400).
async fn with_brand(deps: &Deps, brief: Brief) -> Result<Brief, AppError> {
    let id = brief.brand_id.clone().unwrap_or_default();
    let kit = deps
        .brands
        .get_brand(&id)
        .await?
        .ok_or_else(|| {
            AppError::Invalid(format!(
                "brandId: no brand kit `{id}`; create it with POST /brands, or list the kits with GET /brands"
            ))
        })?;
    kit.apply(brief).map_err(|v| {
        AppError::Invalid(
            v.iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

/// Decides the mode of an `auto` run from the agents' recent samples. A store that cannot
/// answer leaves the run parallel (the default), saying so.
async fn decide_mode(deps: &Deps) -> ModeDecision {
    let policy = deps.mode_policy;
    let reads =
        Agent::ALL.map(|a| async move { (a, deps.store.recent_samples(a, policy.window).await) });
    let mut samples = std::collections::BTreeMap::new();
    for (agent, r) in futures::future::join_all(reads).await {
        match r {
            Ok(s) => {
                samples.insert(agent, s);
            }
            Err(e) => {
                warn!(agent = %agent, error = %crate::errors::Chain(&e), "agent samples unreadable; auto mode decides without them");
            }
        }
    }
    policy.decide(&samples)
}

/// Creates a brand kit at version 1.
pub async fn create_brand(deps: &Deps, input: BrandInput) -> Result<BrandKit, AppError> {
    let brand_id = input.brand_id.ok_or_else(|| {
        AppError::Invalid("brandId: is required: the kit's id (1–64 of a-z, 0-9 and '-')".into())
    })?;
    let now = deps.clock.now();
    let kit = BrandKit {
        brand_id,
        name: input.name,
        version: 1,
        brand_guidelines: input.brand_guidelines,
        constraints: input.constraints,
        created_at: now,
        updated_at: now,
    };
    deps.brands.create_brand(kit.clone()).await?;
    info!(brand_id = %kit.brand_id, "brand kit created");
    Ok(kit)
}

/// Replaces a kit's content with the next version. `input.expected_version`, when given,
/// must be the current version (409 otherwise: someone changed it since it was read).
pub async fn replace_brand(
    deps: &Deps,
    brand_id: &str,
    input: BrandInput,
) -> Result<BrandKit, AppError> {
    if input.brand_id.as_deref().is_some_and(|b| b != brand_id) {
        return Err(AppError::Invalid(format!(
            "brandId: the body names `{}` but the path names `{brand_id}`; a kit's id cannot change",
            input.brand_id.unwrap_or_default()
        )));
    }
    let current = deps
        .brands
        .get_brand(brand_id)
        .await?
        .ok_or_else(|| AppError::Missing(format!("no brand kit `{brand_id}`")))?;
    if let Some(expected) = input.expected_version
        && expected != current.version
    {
        return Err(BrandError::VersionMismatch {
            brand_id: brand_id.to_string(),
            expected,
            current: current.version,
        }
        .into());
    }
    let kit = BrandKit {
        brand_id: brand_id.to_string(),
        name: input.name,
        version: current.version + 1,
        brand_guidelines: input.brand_guidelines,
        constraints: input.constraints,
        created_at: current.created_at,
        updated_at: deps.clock.now(),
    };
    deps.brands.replace_brand(kit.clone()).await?;
    info!(brand_id = %brand_id, version = kit.version, "brand kit replaced");
    Ok(kit)
}

/// Cancels a run: stops its flow, cancels unfinished agents, closes the run with a
/// `cancelled` envelope. Completed artifacts are kept. `Conflict` if already terminal.
#[tracing::instrument(skip_all, fields(run_id = %run_id))]
pub async fn cancel(deps: &Deps, run_id: RunId) -> Result<Run, AppError> {
    let run = deps.store.get_state(run_id).await?;
    if run.status.is_terminal() {
        return Err(AppError::Conflict(format!(
            "run {run_id} is already {}; only a queued or running run can be cancelled",
            run.status
        )));
    }
    if let Err(e) = deps.workflow.stop(run_id, "cancelled by request").await {
        warn!(run_id = %run_id, error = %crate::errors::Chain(&e), "stopping the execution failed; closing the run anyway");
    }
    if !close_cancelled(deps, run_id, "cancelled by request").await? {
        // It reached its own end while we were stopping it.
        let run = deps.store.get_run(run_id).await?;
        return Err(AppError::Conflict(format!(
            "run {run_id} ended {} before it could be cancelled",
            run.status
        )));
    }
    Ok(deps.store.get_run(run_id).await?)
}

/// Starts a new iteration of a terminal run. Re-runs `agents` (default: exactly the
/// envelope's retry list, else every agent without a delivered artifact) and reuses the
/// other agents' completed artifacts by reference, keeping their IDs.
#[tracing::instrument(skip_all, fields(run_id = %run_id))]
pub async fn retry(
    deps: &Deps,
    run_id: RunId,
    agents: Option<Vec<Agent>>,
) -> Result<RunId, AppError> {
    retry_as(deps, run_id, agents, RunId::new()).await
}

/// [`retry`] creating the new iteration with the id `new_id` (an idempotent request):
/// asking again with the same id does not create a second run.
pub async fn retry_as(
    deps: &Deps,
    run_id: RunId,
    agents: Option<Vec<Agent>>,
    new_id: RunId,
) -> Result<RunId, AppError> {
    let parent = deps.store.get_state(run_id).await?;
    if !parent.status.is_terminal() {
        return Err(AppError::Conflict(format!(
            "run {run_id} is still {}; retry it once it has ended (or cancel it first)",
            parent.status
        )));
    }
    let delivered: Vec<(Agent, ArtifactId)> = parent
        .agent_summaries()
        .into_iter()
        .filter(|s| {
            s.status == Status::Completed && s.verdict != Some(crate::domain::Verdict::Fail)
        })
        .filter_map(|s| parent.agents[&s.agent].artifact_id.map(|id| (s.agent, id)))
        .collect();
    let rerun: Vec<Agent> = match agents {
        Some(list) if list.is_empty() => {
            return Err(AppError::Invalid(
                "`agents` must name at least one of copy, social, visual".into(),
            ));
        }
        Some(list) => list,
        None => Agent::ALL
            .into_iter()
            .filter(|a| !delivered.iter().any(|(d, _)| d == a))
            .collect(),
    };
    if rerun.is_empty() {
        return Err(AppError::Conflict(format!(
            "run {run_id} delivered every artifact; name the agents to re-run in {{\"agents\": [...]}}"
        )));
    }
    let reuse = delivered
        .into_iter()
        .filter(|(a, _)| !rerun.contains(a))
        .collect();
    let brief = parent.brief.clone();
    submit_as(deps, new_id, brief, Some((&parent, reuse))).await
}
