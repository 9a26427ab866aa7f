//! Use cases: what the API does (submit, cancel, retry) and what each Task of
//! `statemachine.asl.json` does (agent, audit, finalize). Lambdas and the local engine call
//! exactly these functions; they are written to be idempotent, because Step Functions and
//! SQS deliver at least once and a restarted process re-runs unfinished flows.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::agents;
use crate::domain::envelope::{self, Outcome};
use crate::domain::{
    Agent, AgentError, AgentSample, Artifact, ArtifactId, BrandInput, BrandKit, Brief, Change,
    Event, ExecutionMode, ModeDecision, Run, RunId, Scope, Status,
};
use crate::errors::{FlowError, chain};
use crate::observe;
pub use crate::ports::ExecutionEnd;
use crate::ports::{BrandError, Deps, ExecutionState, NewRun, StoreError, WorkflowError};

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
    let moves: Vec<(Scope, Option<Status>)> =
        changes.iter().map(|c| (c.scope, Some(c.from))).collect();
    let events = deps.store.apply(run_id, changes, deps.clock.now()).await?;
    observe::transitions(&moves, &events);
    deps.publisher.publish(&events).await;
    if events
        .iter()
        .any(|e| e.scope == Scope::Run && e.status.is_terminal())
    {
        // Metrics are best effort: a failed read never fails the transition it reports.
        match (
            deps.store.get_state(run_id).await,
            deps.store.events(run_id, 0).await,
        ) {
            (Ok(run), Ok(log)) => observe::run_closed(&run, &log),
            (Err(e), _) | (_, Err(e)) => {
                warn!(run_id = %run_id, error = %crate::errors::Chain(&e), "metrics of the closed run not recorded")
            }
        }
    }
    Ok(events)
}

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

/// Records how long an agent's generator took (or that it was throttled). Best effort:
/// the figures only steer `auto` runs, so a failed write is logged, never raised.
async fn record_sample(deps: &Deps, agent: Agent, started: std::time::Instant, throttled: bool) {
    let sample = AgentSample {
        agent,
        at: deps.clock.now(),
        duration_ms: started.elapsed().as_millis() as u64,
        throttled,
    };
    if let Err(e) = deps.store.record_sample(sample).await {
        warn!(agent = %agent, error = %crate::errors::Chain(&e), "agent sample not recorded");
    }
}

// ---------------------------------------------------------------------------------------
// The brand library (`/brands`).

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

/// What a closing step makes of a run as it finds it.
enum Closing<T> {
    /// Nothing to write (the run is already closed, say): answer `T`.
    Done(T),
    /// Apply these changes in one batch, then answer `T`.
    Apply(Vec<Change>, T),
}

/// The one loop behind every close: reads the run, applies what `plan` makes of it, and
/// reads and plans again when another step moved the run first (a conflict while the run
/// is still open). A run closed meanwhile comes back as the store's terminal conflict.
async fn settle<T, E: From<StoreError>>(
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
fn close_agents(
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

/// Closes a run as cancelled (API cancel, or an execution aborted from the console).
/// Idempotent: a run already terminal is left alone. Returns whether this call closed it.
pub async fn close_cancelled(deps: &Deps, run_id: RunId, why: &str) -> Result<bool, StoreError> {
    let closed = settle(deps, run_id, |run| {
        if run.status.is_terminal() {
            return Ok::<_, StoreError>(Closing::Done(false));
        }
        let (mut changes, after) =
            close_agents(&run, |s| !s.is_terminal(), Status::Cancelled, |_| None);
        let env = envelope::compute(run_id, true, &after.agent_summaries());
        changes.push(
            Change::run(run.status, Status::Cancelled)
                .with_envelope(env)
                .with_detail(json!({ "outcome": "cancelled", "reason": why })),
        );
        Ok(Closing::Apply(changes, true))
    })
    .await;
    match closed {
        // Closed by another step between the read and the write.
        Err(StoreError::Conflict {
            run_terminal: true, ..
        }) => Ok(false),
        other => other,
    }
}

/// Closes a run as failed (execution failed or timed out, or could not start). Agents that
/// had not produced an artifact are marked failed with the same reason; artifacts are kept.
pub async fn close_failed(
    deps: &Deps,
    run_id: RunId,
    code: &str,
    message: &str,
) -> Result<(), StoreError> {
    let closed = settle(deps, run_id, |run| {
        if run.status.is_terminal() {
            return Ok::<_, StoreError>(Closing::Done(()));
        }
        let error = AgentError {
            code: code.into(),
            message: message.into(),
        };
        let (mut changes, after) = close_agents(
            &run,
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
        Ok(Closing::Apply(changes, ()))
    })
    .await;
    match closed {
        Err(StoreError::Conflict {
            run_terminal: true, ..
        }) => Ok(()),
        other => other,
    }
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

// ---------------------------------------------------------------------------------------
// Task steps of the state machine.

/// Payload of the agent Tasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentTask {
    pub run_id: RunId,
    /// Present when the Task is the Catch handler recording the agent's failure.
    #[serde(default)]
    pub failure: Option<CaughtError>,
}

/// What a Catch puts at its ResultPath.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl CaughtError {
    /// The failure in words. A Lambda's failure reaches a Catch with `Cause` holding the
    /// function's error document as a JSON string (`{"errorType", "errorMessage", …}`): its
    /// `errorMessage` is the reason. Other causes (a timeout's, a Fail state's) are text;
    /// without any, the error name is all there is.
    pub fn message(&self) -> String {
        let cause = self.cause.as_deref().unwrap_or_default().trim();
        if cause.is_empty() {
            return self.error.clone();
        }
        #[derive(Deserialize)]
        struct LambdaError {
            #[serde(rename = "errorMessage")]
            error_message: String,
        }
        match serde_json::from_str::<LambdaError>(cause) {
            Ok(doc) if !doc.error_message.is_empty() => doc.error_message,
            _ => cause.to_string(),
        }
    }
}

/// Payload of the audit Task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditTask {
    pub run_id: RunId,
    /// Audit only these agents' artifacts (sequential path); all generated ones if absent.
    #[serde(default)]
    pub agents: Option<Vec<Agent>>,
    /// `audit` (default) or `defer`.
    #[serde(default)]
    pub action: AuditAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditAction {
    #[default]
    Audit,
    Defer,
}

/// Payload of the finalize Task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeTask {
    pub run_id: RunId,
}

fn agent_output(agent: Agent, status: Status, artifact: Option<ArtifactId>) -> Value {
    let mut v = json!({ "agent": agent, "status": status });
    if let Some(id) = artifact {
        v["artifactId"] = json!(id);
    }
    v
}

/// Generates one agent's artifact. Idempotent: an agent that already has its artifact
/// (including one reused from the parent run) returns it without generating again.
#[tracing::instrument(skip_all, fields(run_id = %task.run_id, agent = %agent))]
pub async fn run_agent(deps: &Deps, agent: Agent, task: AgentTask) -> Result<Value, FlowError> {
    let run_id = task.run_id;
    if let Some(failure) = task.failure {
        return record_agent_failure(deps, run_id, agent, failure).await;
    }
    let run = deps.store.get_state(run_id).await?;
    if run.status.is_terminal() {
        return Err(FlowError::Cancelled(format!(
            "run {run_id} is already {}",
            run.status
        )));
    }
    let st = &run.agents[&agent];
    match st.status {
        Status::Generated | Status::Auditing | Status::AuditPending | Status::Completed => {
            return Ok(agent_output(agent, st.status, st.artifact_id));
        }
        Status::Failed => {
            let msg = st
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            return Err(FlowError::AgentFailed(msg));
        }
        Status::Cancelled => return Err(FlowError::Cancelled(format!("{agent} was cancelled"))),
        Status::Queued => {
            let start = Change::new(agent, Status::Queued, Status::Generating)
                .with_detail(json!({"attempt": 1}));
            // The first agent to start moves the run to generating in the same commit; one
            // that loses that race starts alone.
            let first = run.status == Status::Queued;
            let batch = if first {
                vec![
                    Change::run(Status::Queued, Status::Generating),
                    start.clone(),
                ]
            } else {
                vec![start.clone()]
            };
            match apply(deps, run_id, batch).await {
                Ok(_) => {}
                Err(StoreError::Conflict {
                    run_terminal: false,
                    scope: Scope::Run,
                    ..
                }) if first => {
                    apply(deps, run_id, vec![start]).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Status::Generating => {
            let n = deps.store.bump_attempts(run_id, agent).await?;
            info!(run_id = %run_id, agent = %agent, attempt = n, "retrying agent");
        }
    }
    let started = std::time::Instant::now();
    let generated = match deps.generator.generate(agent, &run.brief, run_id).await {
        Ok(g) => {
            record_sample(deps, agent, started, false).await;
            g
        }
        Err(e) => {
            if matches!(e, crate::ports::GeneratorError::Transient(_)) {
                record_sample(deps, agent, started, true).await;
            }
            return Err(e.into());
        }
    };
    let artifact = Artifact {
        artifact_id: ArtifactId::new(),
        run_id,
        agent,
        tags: agents::tags_for(agent, &run.brief),
        content: generated.content,
        created_at: deps.clock.now(),
        audit: None,
        model: generated.model,
    };
    let id = artifact.artifact_id;
    apply(
        deps,
        run_id,
        vec![
            Change::new(agent, Status::Generating, Status::Generated)
                .with_artifact(artifact)
                .with_detail(json!({ "artifactId": id })),
        ],
    )
    .await?;
    Ok(agent_output(agent, Status::Generated, Some(id)))
}

async fn record_agent_failure(
    deps: &Deps,
    run_id: RunId,
    agent: Agent,
    failure: CaughtError,
) -> Result<Value, FlowError> {
    let run = deps.store.get_state(run_id).await?;
    let st = &run.agents[&agent];
    if run.status.is_terminal() || !matches!(st.status, Status::Queued | Status::Generating) {
        return Ok(agent_output(agent, st.status, st.artifact_id));
    }
    let cause = failure.message();
    warn!(run_id = %run_id, agent = %agent, error = %failure.error, cause = %cause, "agent failed");
    let err = AgentError {
        code: failure.error.clone(),
        message: cause,
    };
    apply(
        deps,
        run_id,
        vec![
            Change::new(agent, st.status, Status::Failed)
                .with_error(err.clone())
                .with_detail(json!({ "error": err })),
        ],
    )
    .await?;
    Ok(agent_output(agent, Status::Failed, None))
}

/// Moves the run from `generating` to `auditing` once nothing is left to generate.
fn run_to_auditing(run: &Run) -> Vec<Change> {
    let still_generating = run
        .agents
        .values()
        .any(|s| matches!(s.status, Status::Queued | Status::Generating));
    match run.status {
        Status::Generating if !still_generating => vec![
            Change::run(Status::Generating, Status::Generated),
            Change::run(Status::Generated, Status::Auditing),
        ],
        Status::Generated => vec![Change::run(Status::Generated, Status::Auditing)],
        Status::AuditPending => vec![Change::run(Status::AuditPending, Status::Auditing)],
        _ => Vec::new(),
    }
}

/// The audit Task: audits generated artifacts (or, with `defer`, marks them audit-pending
/// after the audit step proved unavailable).
#[tracing::instrument(skip_all, fields(run_id = %task.run_id))]
pub async fn audit_step(deps: &Deps, task: AuditTask) -> Result<Value, FlowError> {
    let run = deps.store.get_state(task.run_id).await?;
    if run.status.is_terminal() {
        return Err(FlowError::Cancelled(format!(
            "run {} is already {}",
            run.run_id, run.status
        )));
    }
    let wanted = |a: &Agent| task.agents.as_ref().is_none_or(|l| l.contains(a));
    match task.action {
        AuditAction::Defer => {
            let changes: Vec<Change> = run
                .agents
                .iter()
                .filter(|(a, s)| {
                    wanted(a) && matches!(s.status, Status::Generated | Status::Auditing)
                })
                .map(|(a, s)| Change::new(*a, s.status, Status::AuditPending))
                .collect();
            apply(deps, run.run_id, changes).await?;
            Ok(json!({ "runId": run.run_id, "deferred": true }))
        }
        AuditAction::Audit => audit_agents(deps, &run, task.agents.as_deref()).await,
    }
}

async fn audit_agents(deps: &Deps, run: &Run, only: Option<&[Agent]>) -> Result<Value, FlowError> {
    let wanted = |a: &Agent| only.is_none_or(|l| l.contains(a));
    let targets: Vec<(Agent, Status, ArtifactId)> = run
        .agents
        .iter()
        .filter(|(a, s)| {
            wanted(a)
                && matches!(
                    s.status,
                    Status::Generated | Status::Auditing | Status::AuditPending
                )
        })
        .filter_map(|(a, s)| s.artifact_id.map(|id| (*a, s.status, id)))
        .collect();
    // Audited (and recorded) in the brief's priority order.
    let rank = |a: &Agent| {
        run.brief
            .priority
            .iter()
            .position(|p| p == a)
            .unwrap_or(usize::MAX)
    };
    let mut targets = targets;
    targets.sort_by_key(|(a, _, _)| rank(a));
    if targets.is_empty() {
        return Ok(json!({ "runId": run.run_id, "audited": [] }));
    }
    let mut changes = run_to_auditing(run);
    for (agent, status, _) in &targets {
        if *status != Status::Auditing {
            changes.push(Change::new(*agent, *status, Status::Auditing));
        }
    }
    apply(deps, run.run_id, changes).await?;
    // The artifacts are independent: audit them concurrently, then record every finished
    // audit in one transaction (one commit instead of one per artifact).
    let audits = targets.into_iter().map(|(agent, _, id)| async move {
        let artifact = deps.store.get_artifact(id).await?.ok_or_else(|| {
            FlowError::AgentFailed(format!("artifact {id} of {agent} is missing"))
        })?;
        let report = deps.auditor.audit(&artifact.content, &run.brief).await?;
        Ok::<_, FlowError>((agent, id, report))
    });
    let mut changes = Vec::new();
    let mut audited = Vec::new();
    let mut failure = None;
    for result in futures::future::join_all(audits).await {
        match result {
            Ok((agent, id, report)) => {
                let verdict = report.verdict;
                audited.push(json!({ "agent": agent, "verdict": verdict }));
                changes.push(
                    Change::new(agent, Status::Auditing, Status::Completed)
                        .with_audit(report)
                        .with_detail(json!({ "artifactId": id, "verdict": verdict })),
                );
            }
            Err(e) => failure = Some(e),
        }
    }
    // What was audited is kept even when another audit failed.
    apply(deps, run.run_id, changes).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(json!({ "runId": run.run_id, "audited": audited }))
}

/// The final Task: closes the run with its envelope, or parks it as audit-pending.
/// Idempotent: a terminal run is reported as it is.
#[tracing::instrument(skip_all, fields(run_id = %task.run_id))]
pub async fn finalize(deps: &Deps, task: FinalizeTask) -> Result<Value, FlowError> {
    let run_id = task.run_id;
    let mut parked = false;
    let answer = settle(deps, run_id, |run| {
        parked = false;
        if run.status.is_terminal() {
            return Ok(Closing::Done(
                json!({ "runId": run_id, "status": run.status }),
            ));
        }
        // Artifacts that reached finalize unaudited (the audit and its deferral both
        // failed) are not closed unaudited: they are parked for the deferred audit too.
        let (mut changes, _) = close_agents(
            &run,
            |s| matches!(s, Status::Generated | Status::Auditing),
            Status::AuditPending,
            |_| None,
        );
        if !changes.is_empty()
            || run
                .agents
                .values()
                .any(|s| s.status == Status::AuditPending)
        {
            changes.extend(match run.status {
                Status::Generating => vec![
                    Change::run(Status::Generating, Status::Generated),
                    Change::run(Status::Generated, Status::AuditPending),
                ],
                Status::Generated | Status::Auditing => {
                    vec![Change::run(run.status, Status::AuditPending)]
                }
                _ => Vec::new(),
            });
            parked = true;
            return Ok(Closing::Apply(
                changes,
                json!({ "runId": run_id, "status": Status::AuditPending }),
            ));
        }
        // A flow that ended without finishing an agent (e.g. resumed after a crash and
        // stopped again) closes it with a clear reason rather than leaving it open.
        let (mut changes, after) = close_agents(
            &run,
            |s| matches!(s, Status::Queued | Status::Generating),
            Status::Failed,
            |agent| {
                Some(AgentError {
                    code: "Incomplete".into(),
                    message: format!("the flow ended before the {agent} agent finished"),
                })
            },
        );
        let env = envelope::compute(run_id, false, &after.agent_summaries());
        let outcome = env.outcome;
        let detail = json!({ "outcome": outcome });
        let path: &[Status] = if outcome == Outcome::Failure {
            &[Status::Failed]
        } else {
            &[Status::Generated, Status::Auditing, Status::Completed]
        };
        let mut from = run.status;
        let start = path
            .iter()
            .position(|s| crate::domain::lifecycle::allowed(crate::domain::Subject::Run, from, *s));
        let Some(start) = start else {
            return Err(FlowError::AgentFailed(format!(
                "run {run_id} cannot be closed from {}",
                run.status
            )));
        };
        let steps = &path[start..];
        for (i, to) in steps.iter().enumerate() {
            let mut c = Change::run(from, *to);
            if i + 1 == steps.len() {
                c = c.with_envelope(env.clone()).with_detail(detail.clone());
            }
            changes.push(c);
            from = *to;
        }
        Ok(Closing::Apply(
            changes,
            json!({ "runId": run_id, "status": from, "outcome": outcome }),
        ))
    })
    .await?;
    if parked {
        deps.deferred.enqueue(run_id, DEFERRED_AUDIT_DELAY).await?;
    }
    Ok(answer)
}

/// Consumes one deferred-audit message: audits what is pending and closes the run. A run
/// that is no longer audit-pending (completed, cancelled) is left alone. Returns
/// `AuditUnavailable` when the audit still cannot run, so the caller retries later.
#[tracing::instrument(skip_all, fields(run_id = %run_id))]
pub async fn deferred_audit(deps: &Deps, run_id: RunId) -> Result<Value, FlowError> {
    let run = deps.store.get_state(run_id).await?;
    if !matches!(run.status, Status::AuditPending | Status::Auditing) {
        return Ok(json!({ "runId": run_id, "status": run.status, "skipped": true }));
    }
    // Probe the auditor before moving any state, so an audit that is still unavailable
    // leaves the run exactly as it was (no churn of events).
    for st in run
        .agents
        .values()
        .filter(|s| s.status == Status::AuditPending)
    {
        if let Some(id) = st.artifact_id
            && let Some(a) = deps.store.get_artifact(id).await?
        {
            deps.auditor.audit(&a.content, &run.brief).await?;
        }
    }
    audit_agents(deps, &run, None).await?;
    finalize(deps, FinalizeTask { run_id }).await
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
            warn!(run_id = %run_id, error = %crate::errors::Chain(&e), "could not resume; closing the run");
            close_failed(
                deps,
                run_id,
                "ResumeFailed",
                &format!("could not resume after restart: {e}"),
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

/// Which Task a resource names, for the local engine and the template check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFunction {
    Agent(Agent),
    Audit,
    Finalize,
}

impl TaskFunction {
    pub const ALL: [TaskFunction; 5] = [
        TaskFunction::Agent(Agent::Copy),
        TaskFunction::Agent(Agent::Social),
        TaskFunction::Agent(Agent::Visual),
        TaskFunction::Audit,
        TaskFunction::Finalize,
    ];

    /// The `DefinitionSubstitutions` key of this function in the ASL.
    pub fn substitution(self) -> &'static str {
        match self {
            TaskFunction::Agent(Agent::Copy) => "CopyAgentFunctionArn",
            TaskFunction::Agent(Agent::Social) => "SocialAgentFunctionArn",
            TaskFunction::Agent(Agent::Visual) => "VisualAgentFunctionArn",
            TaskFunction::Audit => "AuditFunctionArn",
            TaskFunction::Finalize => "FinalizeFunctionArn",
        }
    }

    /// Resolves `${Name}` as written in a Task's Resource.
    pub fn from_resource(resource: &str) -> Option<Self> {
        let name = resource.strip_prefix("${")?.strip_suffix('}')?;
        Self::ALL.into_iter().find(|f| f.substitution() == name)
    }

    /// Runs the Task with its JSON payload.
    pub async fn call(self, deps: &Deps, input: Value) -> Result<Value, FlowError> {
        let bad =
            |e: serde_json::Error| FlowError::InvalidInput(format!("malformed task payload: {e}"));
        match self {
            TaskFunction::Agent(agent) => {
                run_agent(deps, agent, serde_json::from_value(input).map_err(bad)?).await
            }
            TaskFunction::Audit => {
                audit_step(deps, serde_json::from_value(input).map_err(bad)?).await
            }
            TaskFunction::Finalize => {
                finalize(deps, serde_json::from_value(input).map_err(bad)?).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caught(error: &str, cause: Option<&str>) -> CaughtError {
        CaughtError {
            error: error.into(),
            cause: cause.map(str::to_string),
        }
    }

    #[test]
    fn a_lambda_error_document_in_the_cause_yields_its_message() {
        // What Step Functions puts at a Catch's ResultPath for a failed Lambda Task.
        let c = caught(
            "AgentFailed",
            Some(r#"{"errorType":"AgentFailed","errorMessage":"the model refused","trace":[]}"#),
        );
        assert_eq!(c.message(), "the model refused");
    }

    #[test]
    fn a_plain_cause_is_kept_and_a_missing_one_falls_back_to_the_error_name() {
        assert_eq!(
            caught("States.Timeout", Some("Task timed out")).message(),
            "Task timed out"
        );
        assert_eq!(caught("States.Timeout", None).message(), "States.Timeout");
        assert_eq!(
            caught("States.Timeout", Some("  ")).message(),
            "States.Timeout"
        );
        assert_eq!(
            caught("X", Some(r#"{"other":"json"}"#)).message(),
            r#"{"other":"json"}"#
        );
    }
}
