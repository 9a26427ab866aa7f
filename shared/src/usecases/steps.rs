//! The Tasks of `statemachine.asl.json`: one agent, the audit, finalize; and the deferred
//! audit, which finishes a run whose audit was unavailable.

use serde_json::{Value, json};
use tracing::{info, warn};

use super::close::{Closing, close_agents, settle};
use super::{DEFERRED_AUDIT_DELAY, apply, apply_sampled};
use crate::agents;
use crate::domain::envelope::{self, Outcome};
use crate::domain::{
    Agent, AgentError, AgentSample, Artifact, ArtifactId, Change, Run, RunId, Status,
};
use crate::errors::FlowError;
use crate::flow::{AgentTask, AuditAction, AuditTask, CaughtError, FinalizeTask};
use crate::ports::Deps;

/// Records how long an agent's generator took (or that it was throttled). Best effort:
/// the figures only steer `auto` runs, so a failed write is logged, never raised.
async fn record_sample(deps: &Deps, agent: Agent, took: std::time::Duration, throttled: bool) {
    if let Err(e) = deps
        .store
        .record_sample(sample(deps, agent, took, throttled))
        .await
    {
        warn!(agent = %agent, error = %crate::errors::Chain(&e), "agent sample not recorded");
    }
}

fn sample(deps: &Deps, agent: Agent, took: std::time::Duration, throttled: bool) -> AgentSample {
    AgentSample {
        agent,
        at: deps.clock.now(),
        duration_ms: took.as_millis() as u64,
        throttled,
    }
}

/// Times one generator call for `auto`'s samples, and records the call even when the step
/// is dropped before the call ends — a Task timeout cutting it off (the local engine drops
/// the step; on AWS the function runs on and records the call when it ends) is the
/// clearest latency signal there is. (A call cut off by a cancel or a shutdown is recorded
/// the same way: the time it had taken is a lower bound of the agent's latency.)
struct CallTimer {
    /// `None` once recorded.
    deps: Option<Deps>,
    agent: Agent,
    started: std::time::Instant,
}

impl CallTimer {
    fn start(deps: &Deps, agent: Agent) -> CallTimer {
        CallTimer {
            deps: Some(deps.clone()),
            agent,
            started: std::time::Instant::now(),
        }
    }

    /// The call ended now and worked: how long it took, for the caller to write the
    /// sample with the artifact (this timer records nothing).
    fn succeeded(mut self) -> std::time::Duration {
        self.deps = None;
        self.started.elapsed()
    }

    /// The call ended now: record it (`throttled`: it failed in a way worth retrying), or
    /// not. The time is taken here; the record is written when the future is awaited.
    fn ended(mut self, record: Option<bool>) -> impl std::future::Future<Output = ()> {
        let took = self.started.elapsed();
        let (deps, agent) = (self.deps.take(), self.agent);
        async move {
            if let (Some(deps), Some(throttled)) = (deps, record) {
                record_sample(&deps, agent, took, throttled).await;
            }
        }
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        let Some(deps) = self.deps.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (agent, took) = (self.agent, self.started.elapsed());
        runtime.spawn(async move { record_sample(&deps, agent, took, false).await });
    }
}

fn agent_output(agent: Agent, status: Status, artifact: Option<ArtifactId>) -> Value {
    let mut v = json!({ "agent": agent, "status": status });
    if let Some(id) = artifact {
        v["artifactId"] = json!(id);
    }
    v
}

/// Generates one agent's artifact. Idempotent: an agent that already has its artifact
/// (including one reused from the parent run) returns it without generating again. With a
/// `deadline` (a Lambda function's, less a margin), a generator call still running then is
/// given up — recorded for `auto` and reported as the agent's failure — instead of the
/// function being killed with nothing recorded.
#[tracing::instrument(skip_all, fields(run_id = %task.run_id(), agent = %agent))]
pub async fn run_agent(
    deps: &Deps,
    agent: Agent,
    task: AgentTask,
    deadline: Option<tokio::time::Instant>,
) -> Result<Value, FlowError> {
    let run_id = match task {
        AgentTask::Generate { run_id } => run_id,
        AgentTask::RecordFailure { run_id, failure } => {
            return record_agent_failure(deps, run_id, agent, failure).await;
        }
    };
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
            // The first agent to start moves the run to generating in the same commit; the
            // others, racing it, find the run there and start alone (no conflict to retry).
            let batch = if run.status == Status::Queued {
                vec![
                    Change::run(Status::Queued, Status::Generating).unless_already(),
                    start,
                ]
            } else {
                vec![start]
            };
            apply(deps, run_id, batch).await?;
        }
        Status::Generating => {
            let n = deps.store.bump_attempts(run_id, agent).await?;
            info!(run_id = %run_id, agent = %agent, attempt = n, "retrying agent");
        }
    }
    let timer = CallTimer::start(deps, agent);
    let call = deps.generator.generate(agent, &run.brief, run_id);
    let answer = match deadline {
        None => call.await,
        Some(d) => match tokio::time::timeout_at(d, call).await {
            Ok(answer) => answer,
            Err(_) => {
                timer.ended(Some(false)).await;
                return Err(FlowError::AgentFailed(format!(
                    "the {agent} agent's generator did not answer before the function's time ran out"
                )));
            }
        },
    };
    let (generated, sample) = match answer {
        Ok(g) => (g, sample(deps, agent, timer.succeeded(), false)),
        Err(e) => {
            let transient = matches!(e, crate::ports::GeneratorError::Transient(_));
            timer.ended(transient.then_some(true)).await;
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
    // The sample and the artifact are independent writes, made in one round trip to
    // the store (one transaction locally).
    apply_sampled(
        deps,
        run_id,
        vec![
            Change::new(agent, Status::Generating, Status::Generated)
                .with_artifact(artifact)
                .with_detail(json!({ "artifactId": id })),
        ],
        sample,
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
        self.call_until(deps, input, None).await
    }

    /// [`TaskFunction::call`] within a `deadline` (see [`run_agent`]).
    pub async fn call_until(
        self,
        deps: &Deps,
        input: Value,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Value, FlowError> {
        let bad =
            |e: serde_json::Error| FlowError::InvalidInput(format!("malformed task payload: {e}"));
        match self {
            TaskFunction::Agent(agent) => {
                let task = serde_json::from_value(input).map_err(bad)?;
                run_agent(deps, agent, task, deadline).await
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
