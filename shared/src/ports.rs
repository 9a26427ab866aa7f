//! Ports: the narrow traits the use cases need from the outside world. Local and AWS
//! adapters implement the same contracts; each method's doc states its error contract and
//! one shared test suite checks every store against it.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::transition::Refused;
use crate::domain::{
    Agent, AgentSample, Artifact, ArtifactId, AuditReport, BrandKit, Brief, Change, Content, Event,
    EventType, ExecutionMode, ModePolicy, ModelUse, Run, RunId, RunSummary, Scope, Status,
};

/// What a new run starts with. Agents listed in `reuse` start `completed` with the given
/// artifact (kept by reference, with its original ID); the others start `queued`.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub run_id: RunId,
    pub parent_run_id: Option<RunId>,
    pub iteration: u32,
    pub brief: Brief,
    pub execution_mode: ExecutionMode,
    /// For an `auto` brief: the decision behind `execution_mode`.
    pub mode_decision: Option<crate::domain::ModeDecision>,
    pub reuse: Vec<(Agent, ArtifactId)>,
    pub created_at: OffsetDateTime,
}

impl NewRun {
    /// A first iteration: a new id, no parent, nothing reused, no mode decision.
    pub fn first(brief: Brief, execution_mode: ExecutionMode, created_at: OffsetDateTime) -> Self {
        NewRun {
            run_id: RunId::new(),
            parent_run_id: None,
            iteration: 1,
            brief,
            execution_mode,
            mode_decision: None,
            reuse: Vec::new(),
            created_at,
        }
    }

    /// The agents' states once created: queued, or completed with the artifact reused.
    pub fn agents(&self) -> std::collections::BTreeMap<Agent, crate::domain::AgentState> {
        use crate::domain::AgentState;
        Agent::ALL
            .into_iter()
            .map(|a| {
                let st = match self.reuse.iter().find(|(r, _)| *r == a) {
                    Some((_, id)) => AgentState {
                        status: Status::Completed,
                        artifact_id: Some(*id),
                        reused: true,
                        ..AgentState::queued()
                    },
                    None => AgentState::queued(),
                };
                (a, st)
            })
            .collect()
    }

    /// The run's state once created (what `get_state` answers until its first transition),
    /// with `brief` as the store reads it back (a brief's JSON does not carry every field
    /// of the parsed one).
    pub fn state(&self, brief: Brief) -> crate::domain::Run {
        crate::domain::Run {
            run_id: self.run_id,
            parent_run_id: self.parent_run_id,
            iteration: self.iteration,
            status: Status::Queued,
            execution_mode: self.execution_mode,
            mode_decision: self.mode_decision.clone(),
            brief,
            created_at: self.created_at,
            updated_at: self.created_at,
            agents: self.agents(),
            artifacts: Vec::new(),
            timings: Default::default(),
            envelope: None,
        }
    }

    /// The run's first event: `run.status queued`, seq 1, naming its lineage.
    pub fn first_event(&self) -> Event {
        Event {
            run_id: self.run_id,
            seq: 1,
            kind: EventType::RunStatus,
            scope: Scope::Run,
            status: Status::Queued,
            at: self.created_at,
            detail: Some(serde_json::json!({
                "iteration": self.iteration,
                "parentRunId": self.parent_run_id,
                "executionMode": self.execution_mode,
                "modeDecision": self.mode_decision,
                "reused": self
                    .reuse
                    .iter()
                    .map(|(a, id)| serde_json::json!({ "agent": a, "artifactId": id }))
                    .collect::<Vec<_>>(),
            })),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass back as `cursor` to get the next (older) page.
    pub next_cursor: Option<String>,
}

/// The failure an error keeps as its source: the SDK's, SQLite's or the network's own
/// error (walk `source()` for the chain), or a plain message where there is no error
/// value (`"…".into()`).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run {0} not found")]
    NotFound(RunId),
    #[error("run {0} already exists")]
    AlreadyExists(RunId),
    /// The subject's status was not the expected one, the transition is not in the
    /// lifecycle table, or the run is already terminal. Nothing of the batch was applied.
    #[error("conflict on {scope} of run {run_id}: expected {expected}, found {actual}{}", if *.run_terminal { " (run already terminal)" } else { "" })]
    Conflict {
        run_id: RunId,
        scope: Scope,
        expected: Status,
        actual: Status,
        run_terminal: bool,
    },
    #[error("invalid cursor `{0}`")]
    BadCursor(String),
    /// The backend failed; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Stored data could not be read back: `what` names it, `source` says why.
    #[error("stored data is corrupt: {what}: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: Cause,
    },
}

impl StoreError {
    /// A batch of `run_id` that [`crate::domain::transition::check`] refused.
    pub fn refused(run_id: RunId, r: Refused) -> StoreError {
        match r {
            Refused::Conflict {
                scope,
                expected,
                actual,
                run_terminal,
            } => StoreError::Conflict {
                run_id,
                scope,
                expected,
                actual,
                run_terminal,
            },
            Refused::NoAgent(_) => StoreError::NotFound(run_id),
        }
    }

    /// Stored (or to-be-stored) `what` that does not read or write as it should.
    pub fn corrupt(what: &str, e: impl Into<Cause>) -> StoreError {
        StoreError::Corrupt {
            what: what.to_string(),
            source: e.into(),
        }
    }
}

/// Durable state of runs, agents, artifacts and the event log.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Creates the run in `queued` with its agents, and appends its first event
    /// (`run.status queued`, seq 1). MUST return `AlreadyExists` if the id is taken (so a
    /// duplicate start is harmless).
    async fn create_run(&self, new: NewRun) -> Result<Event, StoreError>;

    /// The run with its agents, its artifacts (reused ones included) and its envelope.
    /// MUST return `NotFound` for an unknown id.
    async fn get_run(&self, run_id: RunId) -> Result<Run, StoreError>;

    /// The run as [`RunStore::get_run`] returns it but without `timings` and `artifacts`
    /// (both left empty; agents keep their artifact ids and verdicts): what the flow's steps
    /// need, without reading the event log and the artifacts. Same errors.
    async fn get_state(&self, run_id: RunId) -> Result<Run, StoreError> {
        self.get_run(run_id).await
    }

    /// Summaries of runs, newest first. `cursor` comes from a previous page. MUST return
    /// `BadCursor` for a cursor it did not issue.
    /// `status`: only runs in that status (the page is still `limit` runs when enough
    /// match, and the cursor still pages through every matching run).
    async fn list_runs(
        &self,
        limit: usize,
        cursor: Option<&str>,
        status: Option<Status>,
    ) -> Result<RunPage, StoreError>;

    /// Applies `changes` in order, atomically, and appends one event per change with the
    /// next gapless seq. Each change MUST find its subject in `from` and be allowed by the
    /// lifecycle table; an agent change MUST be refused once the run is terminal (as of that
    /// point of the batch). On any refusal nothing is applied and `Conflict` is returned.
    /// `at` is the time of all events of the batch.
    async fn apply(
        &self,
        run_id: RunId,
        changes: Vec<Change>,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>, StoreError>;

    /// Counts one more attempt of an agent that is `generating` (a retried task). Returns
    /// the new count. MUST return `Conflict` if the agent is not `generating` or the run is
    /// terminal.
    async fn bump_attempts(&self, run_id: RunId, agent: Agent) -> Result<u32, StoreError>;

    /// Events with `seq > after`, in order.
    async fn events(&self, run_id: RunId, after: u64) -> Result<Vec<Event>, StoreError>;

    /// The run's state (as [`RunStore::get_state`]) with its timings from its event log:
    /// what closing a run records as metrics. A store may read both in one request, and
    /// less than whole events for the timings.
    async fn closed_run(&self, run_id: RunId) -> Result<Run, StoreError> {
        let mut run = self.get_state(run_id).await?;
        run.timings =
            crate::domain::run::timings_from_events(run.created_at, &self.events(run_id, 0).await?);
        Ok(run)
    }

    /// Ids of runs that are not terminal (for recovery after a crash), oldest first.
    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError>;

    /// Reads one artifact (for reuse by a retry). `Ok(None)` if unknown.
    async fn get_artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError>;

    /// Records one generator call of an agent (for `executionMode: "auto"`). Best effort
    /// for callers; the store keeps at least the most recent 1,000 per agent (the
    /// largest window a mode policy may ask for).
    async fn record_sample(&self, sample: AgentSample) -> Result<(), StoreError>;

    /// [`RunStore::apply`] and [`RunStore::record_sample`] together (an agent's artifact and
    /// its generator call's sample): a store may make both in one round trip, one
    /// transaction. They stay independent: the sample failing never refuses the batch, nor
    /// the batch the sample; each outcome is answered apart.
    async fn apply_with_sample(
        &self,
        run_id: RunId,
        changes: Vec<Change>,
        at: OffsetDateTime,
        sample: AgentSample,
    ) -> (Result<Vec<Event>, StoreError>, Result<(), StoreError>) {
        tokio::join!(self.apply(run_id, changes, at), self.record_sample(sample))
    }

    /// The agent's most recent samples, newest first, at most `limit`.
    async fn recent_samples(
        &self,
        agent: Agent,
        limit: usize,
    ) -> Result<Vec<AgentSample>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    #[error("no brand kit `{0}`")]
    NotFound(String),
    #[error("brand kit `{0}` already exists")]
    AlreadyExists(String),
    /// A replacement expected another current version (someone replaced it meanwhile).
    #[error("brand kit `{brand_id}` is at version {current}, not {expected}")]
    VersionMismatch {
        brand_id: String,
        expected: u32,
        current: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The brand library: named, versioned brand kits (`/brands`).
#[async_trait]
pub trait BrandLibrary: Send + Sync {
    /// Stores a new kit (its `version` is 1). MUST return `AlreadyExists` if the id is taken.
    async fn create_brand(&self, kit: BrandKit) -> Result<(), BrandError>;
    /// `Ok(None)` for an unknown id.
    async fn get_brand(&self, brand_id: &str) -> Result<Option<BrandKit>, StoreError>;
    /// Every kit, by id.
    async fn list_brands(&self) -> Result<Vec<BrandKit>, StoreError>;
    /// Replaces a kit whose current version is `kit.version - 1`, atomically. MUST return
    /// `NotFound` for an unknown id and `VersionMismatch` when the current version differs.
    async fn replace_brand(&self, kit: BrandKit) -> Result<(), BrandError>;
    /// MUST return `NotFound` for an unknown id.
    async fn delete_brand(&self, brand_id: &str) -> Result<(), BrandError>;
}

/// Request keys (an `Idempotency-Key` header, an EventBridge event id), each standing for
/// the run its first request created, so a repeated request finds that run.
#[async_trait]
pub trait RequestKeys: Send + Sync {
    /// Claims `key` for `run_id` and the request's `fingerprint`, until `expires_at`. MUST
    /// claim it (`fresh: true`) when the key is unknown or its claim expired at `now`, and
    /// otherwise return the standing claim unchanged (`fresh: false`) — atomically, so two
    /// concurrent claims of one key get one winner.
    async fn claim_key(
        &self,
        key: &str,
        fingerprint: &str,
        run_id: RunId,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<KeyClaim, StoreError>;
}

/// How long a WebSocket connection's records live: API Gateway closes a connection after
/// two hours.
pub const CONNECTION_TTL: time::Duration = time::Duration::hours(2);

/// WebSocket connections (AWS) and the runs each is subscribed to; the notifier pushes a
/// run's events to its subscribers.
#[async_trait]
pub trait Subscriptions: Send + Sync {
    /// Records a connection, for [`CONNECTION_TTL`] from `now`.
    async fn connect(&self, connection_id: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Forgets a connection. Its subscriptions MAY stay until they expire or a push finds
    /// the connection gone.
    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError>;
    /// Subscribes a connection to a run, for [`CONNECTION_TTL`] from `now`; subscribing
    /// again renews it (one subscription, not two).
    async fn subscribe(
        &self,
        connection_id: &str,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Ends a subscription; ending one that does not exist is not an error.
    async fn unsubscribe(&self, connection_id: &str, run_id: RunId) -> Result<(), StoreError>;
    /// The connections subscribed to `run_id` whose subscription has not expired at
    /// `now`. MUST include a subscription made just before (read after write), or its
    /// events are pushed to nobody until the client replays.
    async fn subscribers(
        &self,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The client went away (410): forget the connection, do not retry.
    #[error("connection {0} is gone")]
    Gone(String),
    #[error("push failed: {0}")]
    Failed(#[source] Cause),
}

/// Sends one message to one WebSocket connection.
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn push(&self, connection_id: &str, text: &str) -> Result<(), PushError>;
}

/// What a request key stands for (see [`RequestKeys::claim_key`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub run_id: RunId,
    pub fingerprint: String,
    /// This call claimed the key (the request is new).
    pub fresh: bool,
}

/// Fan-out of persisted events to live subscribers. Best effort: subscribers replay
/// from the store for anything missed, so a failed publish never fails a transition.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[Event]);
}

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("an execution for run {0} already exists")]
    AlreadyStarted(RunId),
    #[error("no execution for run {0}")]
    NotFound(RunId),
    #[error("workflow service unavailable: {0}")]
    Unavailable(#[source] Cause),
}

/// How an execution ended, as Step Functions (or the local engine) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionEnd {
    Succeeded,
    Aborted,
    Failed { error: String, cause: String },
    TimedOut,
}

/// Where an execution is, as [`Workflow::describe`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    /// Ended as `end`, at `at` (`None`: the service did not say when).
    Ended {
        end: ExecutionEnd,
        at: Option<time::OffsetDateTime>,
    },
    /// No execution was ever started for the run (or it is no longer known).
    Missing,
}

/// Starts and stops executions of the state machine. The run id is the execution name,
/// which makes a duplicate start detectable.
#[async_trait]
pub trait Workflow: Send + Sync {
    /// MUST return `AlreadyStarted` when an execution with this run id exists.
    async fn start(&self, run_id: RunId, input: Value) -> Result<(), WorkflowError>;
    /// Stops the execution; stopping one that has ended is not an error.
    async fn stop(&self, run_id: RunId, cause: &str) -> Result<(), WorkflowError>;
    /// Where the run's execution is. MUST return `Missing` (not an error) for a run with no
    /// execution; `Unavailable` only when the service could not answer.
    async fn describe(&self, run_id: RunId) -> Result<ExecutionState, WorkflowError>;
}

/// Why a new run is not admitted now, and when to ask again (HTTP 429 + `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Busy {
    pub reason: String,
    pub retry_after: std::time::Duration,
}

/// Held while an admitted run is created, so that concurrent admissions cannot overshoot
/// the limit; dropped once the run's execution has started.
pub type AdmissionGuard = Box<dyn Send>;

/// Backpressure on new runs: a limit of runs in flight and of submissions per second per
/// client. Checked before anything is created, so a refused request leaves nothing behind.
#[async_trait]
pub trait Admission: Send + Sync {
    async fn admit(&self, client: &str) -> Result<AdmissionGuard, Busy>;
}

/// Queue of runs whose audit was deferred because the audit step was unavailable.
#[async_trait]
pub trait DeferredAudits: Send + Sync {
    /// Schedules `run_id` for audit no earlier than `delay` from now. Idempotent per run.
    async fn enqueue(&self, run_id: RunId, delay: std::time::Duration) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// Worth retrying (throttling, a dropped connection).
    #[error("transient: {0}")]
    Transient(#[source] Cause),
    /// Retrying the same input will not help.
    #[error("{0}")]
    Failed(#[source] Cause),
}

/// What a generator produced: the content, and the model's use when a model wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub content: Content,
    pub model: Option<ModelUse>,
}

impl From<Content> for Generated {
    fn from(content: Content) -> Self {
        Generated {
            content,
            model: None,
        }
    }
}

/// Produces an artifact's content for one agent.
#[async_trait]
pub trait Generator: Send + Sync {
    async fn generate(
        &self,
        agent: Agent,
        brief: &Brief,
        run_id: RunId,
    ) -> Result<Generated, GeneratorError>;
}

#[derive(Debug, thiserror::Error)]
#[error("audit unavailable: {0}")]
pub struct AuditUnavailable(#[source] pub Cause);

/// The compliance audit of one artifact.
#[async_trait]
pub trait Auditor: Send + Sync {
    async fn audit(
        &self,
        content: &Content,
        brief: &Brief,
    ) -> Result<AuditReport, AuditUnavailable>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Everything a use case needs, chosen at run time (local or AWS).
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn RunStore>,
    pub keys: Arc<dyn RequestKeys>,
    pub brands: Arc<dyn BrandLibrary>,
    /// How `executionMode: "auto"` decides, and the mode of briefs that do not say.
    pub mode_policy: ModePolicy,
    pub publisher: Arc<dyn EventPublisher>,
    pub workflow: Arc<dyn Workflow>,
    pub deferred: Arc<dyn DeferredAudits>,
    pub generator: Arc<dyn Generator>,
    pub auditor: Arc<dyn Auditor>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}
