//! The embedded store: one SQLite file (WAL) holding runs, agent states, artifacts, the
//! event log, the local deferred-audit queue, request keys, agent samples, brand kits and
//! WebSocket subscriptions. Every `apply` is one transaction, so a transition, its artifact
//! and its event are written together or not at all.

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use ulid::ULID_LEN;

use crate::domain::run::{Mark, timings_from_marks};
use crate::domain::transition::{self, Change, Snapshot};
use crate::domain::{
    Agent, AgentSample, AgentState, Artifact, ArtifactId, BrandKit, Brief, Envelope, Event,
    ExecutionMode, Run, RunId, Status,
};
use crate::ports::{
    BrandError, BrandLibrary, CONNECTION_TTL, DeferredAudits, KeyClaim, NewRun, RequestKeys,
    RunPage, RunStore, StoreError, Subscriptions,
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS runs (
    run_id         TEXT PRIMARY KEY,
    parent_run_id  TEXT,
    iteration      INTEGER NOT NULL,
    status         TEXT NOT NULL,
    execution_mode TEXT NOT NULL,
    brief          TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    envelope       TEXT
);
CREATE INDEX IF NOT EXISTS runs_unfinished ON runs(status)
    WHERE status NOT IN ('completed', 'failed', 'cancelled');
CREATE TABLE IF NOT EXISTS agents (
    run_id      TEXT NOT NULL REFERENCES runs(run_id),
    agent       TEXT NOT NULL,
    status      TEXT NOT NULL,
    artifact_id TEXT,
    attempts    INTEGER NOT NULL,
    error       TEXT,
    reused      INTEGER NOT NULL,
    verdict     TEXT,
    PRIMARY KEY (run_id, agent)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
    artifact_id TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deferred_audits (
    run_id   TEXT PRIMARY KEY,
    due_at   INTEGER NOT NULL,
    attempts INTEGER NOT NULL
);
"#;

/// Idempotency keys and event ids ([`RequestKeys::claim_key`]).
const SCHEMA_V2_REQUEST_KEYS: &str = r#"
CREATE TABLE request_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// `executionMode: "auto"` (the decision on the run, the agents' latency samples) and the
/// brand library.
const SCHEMA_V3_AUTO_MODE_AND_BRANDS: &str = r#"
ALTER TABLE runs ADD COLUMN mode_decision TEXT;
CREATE TABLE agent_samples (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    throttled   INTEGER NOT NULL
);
CREATE INDEX agent_samples_recent ON agent_samples(agent, id);
CREATE TABLE brands (
    brand_id TEXT PRIMARY KEY,
    version  INTEGER NOT NULL,
    body     TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// WebSocket connections and their subscriptions ([`Subscriptions`]); times are unix
/// seconds, as the DynamoDB store's TTL attribute.
const SCHEMA_V4_SUBSCRIPTIONS: &str = r#"
CREATE TABLE connections (
    connection_id TEXT PRIMARY KEY,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE subscriptions (
    run_id        TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (run_id, connection_id)
) WITHOUT ROWID;
"#;

/// An artifact's audit report in a column of its own, so recording it does not rewrite the
/// artifact's body.
const SCHEMA_V5_AUDIT_COLUMN: &str = r#"
ALTER TABLE artifacts ADD COLUMN audit TEXT;
"#;

/// Event bodies without the run id and seq, which are the row's key ([`StoredEvent`]).
/// Nothing to change in the tables — bodies written before, with the ids, read as they
/// are — but a `campaign` from before this version would not read the new bodies, so it
/// is told the file is ahead of it rather than reading them wrong.
const SCHEMA_V6_EVENT_BODIES_WITHOUT_IDS: &str = r#"
-- event bodies without runId and seq
"#;

/// The index of unfinished runs without its `NOT IN` list: SQLite evaluates a list of more
/// than two constants through a temporary table it builds for every statement that writes
/// a row the index may hold — twice for each change of a run's status (old and new row),
/// ~7 per run (callgrind: 4,773 temporary B-trees for 661 runs; BENCHMARKS.md, ninth part,
/// has what the store's groups cost before and after). Three comparisons
/// instead; [`UNFINISHED`] is the same condition, so the query can use the index.
const SCHEMA_V7_UNFINISHED_WITHOUT_IN_LIST: &str = r#"
DROP INDEX IF EXISTS runs_unfinished;
CREATE INDEX runs_unfinished ON runs(status)
    WHERE status <> 'completed' AND status <> 'failed' AND status <> 'cancelled';
"#;

/// The event log in the order it is written: a row id per event (so a group's events go
/// to the last pages of the table, whichever runs they belong to) and an index by run and
/// seq. Keyed by (run id, seq) as before, every event went to its run's place in the log:
/// with thousands of runs in flight each event dirtied a page of its own, split pages
/// in the middle, and missed the page cache (`campaign bench`, BENCHMARKS.md, eleventh
/// part). The index's entries are a tenth of a row's size, so far more fit a page.
const SCHEMA_V8_EVENTS_IN_WRITE_ORDER: &str = r#"
CREATE TABLE events_v8 (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    body   TEXT NOT NULL
);
INSERT INTO events_v8 (run_id, seq, body) SELECT run_id, seq, body FROM events ORDER BY run_id, seq;
DROP TABLE events;
ALTER TABLE events_v8 RENAME TO events;
CREATE UNIQUE INDEX events_of_run ON events(run_id, seq);
"#;

/// The agents' states in their run's row, as JSON (the API's `agents` object), instead of
/// a row each: a transition wrote its agent's row and then its run's (for the seq) — two
/// statements and, with thousands of runs in flight, two pages of their own per commit.
/// Now it writes the run's row alone (`campaign bench`, BENCHMARKS.md, eleventh part).
const SCHEMA_V9_AGENTS_IN_THE_RUN_ROW: &str = r#"
ALTER TABLE runs ADD COLUMN agents TEXT NOT NULL DEFAULT '{}';
UPDATE runs SET agents = (
    SELECT json_group_object(agent, json_object(
        'status', status,
        'artifactId', artifact_id,
        'attempts', attempts,
        'error', json(error),
        'reused', json(CASE WHEN reused THEN 'true' ELSE 'false' END),
        'verdict', verdict))
    FROM agents WHERE agents.run_id = runs.run_id);
DROP TABLE agents;
"#;

/// Audit reports in a table of their own, keyed by artifact: recording one appends a small
/// row instead of growing the artifact's (v5), which shared its page with others. The key
/// refers to the artifact, so a report cannot be recorded for an artifact the file does
/// not have.
const SCHEMA_V10_AUDITS_APART: &str = r#"
CREATE TABLE audits (
    artifact_id TEXT PRIMARY KEY REFERENCES artifacts(artifact_id),
    report      TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO audits (artifact_id, report)
    SELECT artifact_id, audit FROM artifacts WHERE audit IS NOT NULL ORDER BY artifact_id;
ALTER TABLE artifacts DROP COLUMN audit;
"#;

/// An artifact's body and its audit report, if any (schema v10).
const READ_ARTIFACT: &str = "SELECT body, report FROM artifacts
     LEFT JOIN audits USING (artifact_id) WHERE artifact_id = ?1";

/// Unfinished runs, in order: the condition of schema v7's index, which the query names so
/// it cannot fall back to reading every run.
const UNFINISHED: &str = "SELECT run_id FROM runs INDEXED BY runs_unfinished
     WHERE status <> 'completed' AND status <> 'failed' AND status <> 'cancelled'
     ORDER BY run_id";

/// The statements that write a run's row ([`apply_tx`], `create_run`).
const SET_RUN_SEQ: &str = "UPDATE runs SET seq = ?2, updated_at = ?3,
     agents = COALESCE(?4, agents) WHERE run_id = ?1";
const SET_RUN_STATUS: &str = "UPDATE runs SET seq = ?2, updated_at = ?3, status = ?4,
     envelope = COALESCE(?5, envelope), agents = COALESCE(?6, agents) WHERE run_id = ?1";
const INSERT_RUN: &str = "INSERT INTO runs (run_id, parent_run_id, iteration, status,
     execution_mode, brief, created_at, updated_at, seq, mode_decision, agents)
     VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?6, 1, ?7, ?8)";

/// Prepared statements kept per connection (more than the store has).
const STATEMENT_CACHE: usize = 64;

/// Samples kept per agent (older ones are deleted as new ones come): the largest window a
/// mode policy may ask for.
const SAMPLES_KEPT: i64 = 1000;

/// Samples are cut back to [`SAMPLES_KEPT`] per agent on every this many-th insert.
const PRUNE_EVERY: i64 = 256;

/// The schema's versions, applied in order and recorded in SQLite's `user_version`. Never
/// edit one that has shipped: add the next. (Version 1 keeps `IF NOT EXISTS`, so files made
/// before versioning, with `user_version` 0, are adopted as they are.)
fn migrations() -> rusqlite_migration::Migrations<'static> {
    rusqlite_migration::Migrations::new(vec![
        rusqlite_migration::M::up(SCHEMA),
        rusqlite_migration::M::up(SCHEMA_V2_REQUEST_KEYS),
        rusqlite_migration::M::up(SCHEMA_V3_AUTO_MODE_AND_BRANDS),
        rusqlite_migration::M::up(SCHEMA_V4_SUBSCRIPTIONS),
        rusqlite_migration::M::up(SCHEMA_V5_AUDIT_COLUMN),
        rusqlite_migration::M::up(SCHEMA_V6_EVENT_BODIES_WITHOUT_IDS),
        rusqlite_migration::M::up(SCHEMA_V7_UNFINISHED_WITHOUT_IN_LIST),
        rusqlite_migration::M::up(SCHEMA_V8_EVENTS_IN_WRITE_ORDER),
        rusqlite_migration::M::up(SCHEMA_V9_AGENTS_IN_THE_RUN_ROW),
        rusqlite_migration::M::up(SCHEMA_V10_AUDITS_APART),
    ])
}

/// A request waiting for the connection: run inside the open transaction (again, if a
/// request beside it failed: see [`commit_group`]), then answered once the transaction's
/// commit has succeeded or failed.
trait Request: Send {
    /// Runs the request, keeping its outcome; whether it succeeded.
    fn run(&mut self, c: &Connection, states: &mut States) -> bool;
    /// Answers the caller with the kept outcome, or the commit's failure.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

type Job = Box<dyn Request>;

/// Where a queued request's answer (and its closure, to be freed by the caller) comes.
type Answer<T, F> = tokio::sync::oneshot::Receiver<(Result<T, StoreError>, F)>;

/// A request's closure, its last outcome and its caller.
///
/// The closure goes back to the caller with the answer, so what it owns (a transition's
/// changes and their JSON, an artifact) is freed on the caller's thread, not in the
/// store's one-at-a-time groups.
struct Pending<T, F> {
    f: F,
    outcome: Option<Result<T, StoreError>>,
    answer: tokio::sync::oneshot::Sender<(Result<T, StoreError>, F)>,
}

impl<T, F> Request for Pending<T, F>
where
    T: Send,
    F: FnMut(&Connection, &mut States) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, c: &Connection, states: &mut States) -> bool {
        let outcome = (self.f)(c, states);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let Pending {
            f,
            outcome,
            answer: to,
        } = *self;
        let answer = match (commit, outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Ok(()), None) => Err(StoreError::Unavailable(
                "the store request did not run".into(),
            )),
            (Err(e), _) => Err(StoreError::Unavailable(
                format!("commit failed: {e}").into(),
            )),
        };
        let _ = to.send((answer, f));
    }
}

/// SQLite-backed [`RunStore`] and [`DeferredAudits`]. Cheap to clone.
///
/// Requests commit in groups. A request made while the connection is free runs at once on
/// its caller's thread, with whatever else waits (no hand-over to another thread and back,
/// which was most of a lone request's latency); requests that find it busy queue, and the
/// store thread commits them together once it is free — under load one WAL commit carries
/// many transitions (commits dominated, measured). A failing request's writes are undone
/// alone (see [`commit_group`]), and every caller is answered only after the commit:
/// nobody sees (or publishes) a write that is not committed.
#[derive(Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
    alive: Arc<()>,
}

/// The connection and the requests waiting for it.
struct Shared {
    conn: std::sync::Mutex<Db>,
    queue: std::sync::Mutex<Vec<Job>>,
    /// Wakes the store thread.
    wake: std::sync::mpsc::Sender<()>,
    counts: Counters,
    /// Set by the checkpointer when the WAL should start again from its beginning: the
    /// writer checkpoints what is left between two groups (see `checkpoint_in_background`).
    wal_reset: std::sync::atomic::AtomicBool,
}

/// What a store has done since it was opened: how many requests its callers made, how
/// many were answered with an error, how many of them wrote, and how many groups (one
/// transaction each) carried them — a machine-independent measure of a run's store work
/// (`campaign bench`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub requests: u64,
    /// Requests answered with an error: mostly conflicts their reads found.
    pub refused: u64,
    /// Requests that wrote and were committed: the commits a caller needs, were every
    /// write its own transaction.
    pub writes: u64,
    /// Groups run (a group run again after a failure counts once).
    pub groups: u64,
}

#[derive(Default)]
struct Counters {
    requests: std::sync::atomic::AtomicU64,
    refused: std::sync::atomic::AtomicU64,
    writes: std::sync::atomic::AtomicU64,
    groups: std::sync::atomic::AtomicU64,
}

impl Counters {
    fn add(n: &std::sync::atomic::AtomicU64) {
        Self::add_n(n, 1);
    }

    fn add_n(n: &std::sync::atomic::AtomicU64, by: u64) {
        n.fetch_add(by, std::sync::atomic::Ordering::Relaxed);
    }
}

/// WAL frames (4 KiB pages) left after a background checkpoint at which the writer
/// checkpoints once itself, between two groups, so that the WAL starts again from its
/// beginning (see `checkpoint_in_background`).
const WAL_RESET_FRAMES: i64 = 4096;

/// Most requests committed together.
const GROUP_MAX: usize = 256;

/// The file's application id (`PRAGMA application_id`, the header's bytes 68–71: "CAMP"),
/// written at open and by each WAL restart made off the callers' path (see
/// [`Shared::restart_wal`]).
const APPLICATION_ID: i32 = 0x4341_4D50;

/// The connection, and the states of the runs it has read or written lately.
struct Db {
    conn: Connection,
    states: States,
}

/// Runs' states (what `get_state` answers, and the seq of their last event) as last read
/// or written through the store's connection, so that a flow step's read of its run and a
/// transition's check of the statuses it changes need no query (a state read was ~40 k
/// instructions and a transition's snapshot two more queries; a run makes ~12 and ~11 of
/// them). It never holds what the file does not:
///
/// - a request changes it only by what it read, or — as its last step, once all its
///   statements succeeded — by what it wrote; a request that fails leaves it as before;
/// - [`commit_group`] empties it whenever a transaction that held writes of other
///   requests is rolled back, and when another connection has committed to the file since
///   (`PRAGMA data_version`);
/// - a run closed by a transition leaves it when its close is read (`closed_run`, which the
///   flow calls right after), or as the least recently used; a closed run read from the
///   file is not kept (they are read rarely, by clients, with their artifacts).
///
/// Beside a run's state it keeps the marks of its events, so the timings of its close need
/// no read of its log, and the artifacts this connection wrote for it (with their audit
/// reports once recorded), so the audit's reads of them need no query and no parse (the
/// log's read was ~30 k instructions per run, the artifacts' ~100 k). A run's artifacts
/// leave with it.
///
/// In debug builds everything answered from it is compared with the file's.
struct States {
    runs: hashlink::LruCache<RunId, Kept>,
    /// The artifacts of the kept runs that this connection wrote.
    artifacts: std::collections::HashMap<ArtifactId, Arc<Artifact>>,
    /// The file's `data_version` as this connection last saw it.
    data_version: Option<i64>,
}

/// What [`States`] keeps of a run. The run and its artifacts are shared with the
/// requests that read them, which copy them once answered, outside the store's groups.
struct Kept {
    run: Arc<Run>,
    /// The seq of its last event.
    seq: u64,
    /// The marks of its events, in order.
    marks: Vec<Mark>,
    /// Its artifacts in [`States::artifacts`].
    artifacts: Vec<ArtifactId>,
}

/// Runs whose states are kept: more than the runs in flight of any measured load
/// (10,000), at ~3 KiB each.
const STATES_KEPT: usize = 16_384;

impl States {
    fn new() -> Self {
        States {
            runs: hashlink::LruCache::new(STATES_KEPT),
            artifacts: std::collections::HashMap::new(),
            data_version: None,
        }
    }

    fn clear(&mut self) {
        self.runs.clear();
        self.artifacts.clear();
    }

    /// Empties the states if another connection committed to the file since last time.
    fn follow(&mut self, c: &Connection) -> Result<(), rusqlite::Error> {
        let v: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.data_version.is_some_and(|seen| seen != v) {
            self.clear();
        }
        self.data_version = Some(v);
        Ok(())
    }

    /// Keeps `kept` (which holds no artifact yet), making room by letting go of the least
    /// recently used run.
    fn keep(&mut self, run_id: RunId, kept: Kept) {
        if self.runs.len() >= self.runs.capacity()
            && !self.runs.contains_key(&run_id)
            && let Some((_, old)) = self.runs.remove_lru()
        {
            self.drop_artifacts(&old);
        }
        if let Some(old) = self.runs.insert(run_id, kept) {
            self.drop_artifacts(&old);
        }
    }

    fn drop_artifacts(&mut self, kept: &Kept) {
        for id in &kept.artifacts {
            self.artifacts.remove(id);
        }
    }

    /// What `f` makes of the run's state and last seq: the kept ones, or the file's (kept
    /// from then on while the run is open).
    fn with<T>(
        &mut self,
        c: &Connection,
        run_id: RunId,
        f: impl FnOnce(&Run, u64) -> T,
    ) -> Result<T, StoreError> {
        self.with_kept(c, run_id, false, |k| f(&k.run, k.seq))
    }

    /// What `f` makes of what is kept of the run, or of what the file holds (kept from then
    /// on while the run is open). A run that is not kept gets its marks read from the file
    /// only if it is to be kept or `marks` is asked for.
    fn with_kept<T>(
        &mut self,
        c: &Connection,
        run_id: RunId,
        marks: bool,
        f: impl FnOnce(&Kept) -> T,
    ) -> Result<T, StoreError> {
        if let Some(kept) = self.runs.get(&run_id) {
            #[cfg(debug_assertions)]
            {
                let read = read_state(c, run_id)?;
                assert_eq!(
                    (&read.0, read.1),
                    (&*kept.run, kept.seq),
                    "the kept state of run {run_id} differs from the file's"
                );
                assert_eq!(
                    read_marks(c, run_id)?,
                    kept.marks,
                    "the kept marks of run {run_id} differ from the file's"
                );
            }
            return Ok(f(kept));
        }
        let (run, seq) = read_state(c, run_id)?;
        let keep = !run.status.is_terminal();
        let kept = Kept {
            marks: if keep || marks {
                read_marks(c, run_id)?
            } else {
                Vec::new()
            },
            run: Arc::new(run),
            seq,
            artifacts: Vec::new(),
        };
        let out = f(&kept);
        if keep {
            self.keep(run_id, kept);
        }
        Ok(out)
    }

    /// A kept artifact.
    fn artifact(
        &self,
        c: &Connection,
        id: ArtifactId,
    ) -> Result<Option<Arc<Artifact>>, StoreError> {
        let Some(artifact) = self.artifacts.get(&id) else {
            return Ok(None);
        };
        #[cfg(debug_assertions)]
        assert_eq!(
            read_artifact(c, &id.to_string())?.as_ref(),
            Some(&**artifact),
            "the kept artifact {id} differs from the file's"
        );
        #[cfg(not(debug_assertions))]
        let _ = c;
        Ok(Some(Arc::clone(artifact)))
    }

    fn forget(&mut self, run_id: RunId) {
        if let Some(old) = self.runs.remove(&run_id) {
            self.drop_artifacts(&old);
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// Runs `job` in a savepoint: its writes are kept if it succeeds, undone if it fails.
/// `Err` when the savepoint itself cannot be opened or closed: the transaction is lost.
fn in_savepoint(
    c: &Connection,
    states: &mut States,
    job: &mut Job,
) -> Result<bool, rusqlite::Error> {
    // Cached statements: these run around every request, and preparing them anew each
    // time was a measurable share of a run's instructions.
    let run = |sql: &str| c.prepare_cached(sql).and_then(|mut s| s.execute([]));
    run("SAVEPOINT step")?;
    let ok = job.run(c, states);
    if !ok {
        run("ROLLBACK TO step")?;
    }
    run("RELEASE step")?;
    Ok(ok)
}

impl Shared {
    /// The queue, even if a request panicked while holding it.
    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to [`GROUP_MAX`] waiting requests.
    fn take_group(&self) -> Vec<Job> {
        let mut q = self.queue();
        let n = q.len().min(GROUP_MAX);
        q.drain(..n).collect()
    }

    /// A caller's turn: if the connection is free, run what is waiting now (usually just
    /// this caller's request) and answer it. Whatever queued meanwhile is the store
    /// thread's, so a caller never leads for long and groups grow under load.
    fn lead(&self) {
        let mut conn = match self.conn.try_lock() {
            Ok(c) => c,
            // A request that panicked left the connection; commit_group rolls back what
            // it left open.
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            // Busy: the holder looks at the queue after it lets go.
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        let group = self.take_group();
        if !group.is_empty() {
            Counters::add(&self.counts.groups);
            Counters::add_n(&self.counts.writes, commit_group(&mut conn, group));
            self.reset_wal_if_asked(&conn.conn);
        }
        drop(conn);
        if !self.queue().is_empty() {
            let _ = self.wake.send(());
        }
    }

    /// Between two groups, if the checkpointer asked: checkpoints on the writing
    /// connection, so the next transaction starts the WAL again from its beginning.
    fn reset_wal_if_asked(&self, conn: &Connection) {
        if !self
            .wal_reset
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %crate::errors::Chain(&e), "WAL checkpoint failed");
        }
    }

    /// Called when the background checkpoint has just copied every frame of the WAL: if
    /// the connection is free, writes the file's application id, so that this write — not
    /// the next request's — is the first after a complete checkpoint, which SQLite makes
    /// start the WAL again from its beginning and sync its new header (the sync took
    /// 0.3–0.6 ms of a request's time, about five times a second under `campaign bench`'s
    /// latency runs). Should a request have committed since the checkpoint, the write
    /// only appends a frame (no sync), and the next checkpoint tries again. Requests made
    /// meanwhile queue and are committed once it lets go.
    fn restart_wal(&self) {
        let Ok(db) = self.conn.try_lock() else {
            // Busy (the next checkpoint tries again) or left by a panic (commit_group
            // rolls back what it left).
            return;
        };
        if let Err(e) = db
            .conn
            .pragma_update(None, "application_id", APPLICATION_ID)
        {
            tracing::warn!(error = %crate::errors::Chain(&e), "WAL restart failed");
        }
        drop(db);
        if !self.queue().is_empty() {
            let _ = self.wake.send(());
        }
    }

    /// The store thread's turn: run groups until nothing waits (looking again after
    /// letting go of the connection, so a request queued meanwhile is not left behind).
    fn drain(&self) {
        loop {
            {
                let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    let group = self.take_group();
                    if group.is_empty() {
                        break;
                    }
                    Counters::add(&self.counts.groups);
                    Counters::add_n(&self.counts.writes, commit_group(&mut conn, group));
                    self.reset_wal_if_asked(&conn.conn);
                }
            }
            if self.queue().is_empty() {
                return;
            }
        }
    }
}

/// The store thread: woken when requests wait behind a busy connection, it commits them
/// in groups; ends when the store is dropped.
fn store_thread(shared: std::sync::Weak<Shared>, wake: std::sync::mpsc::Receiver<()>) {
    while wake.recv().is_ok() {
        while wake.try_recv().is_ok() {}
        match shared.upgrade() {
            Some(s) => s.drain(),
            None => return,
        }
    }
}

/// Records one generator call; every [`PRUNE_EVERY`]-th insert cuts each agent's samples
/// back to [`SAMPLES_KEPT`].
fn insert_sample(c: &Connection, s: &AgentSample) -> Result<(), StoreError> {
    let agent = s.agent.as_str();
    c.prepare_cached(
        "INSERT INTO agent_samples (agent, at, duration_ms, throttled) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(unavailable)?
    .execute(params![
        agent,
        nanos(s.at),
        s.duration_ms as i64,
        s.throttled
    ])
    .map_err(unavailable)?;
    // Keep each agent's newest SAMPLES_KEPT. Finding an agent's cut walks its
    // SAMPLES_KEPT newest index entries (ids are shared by all agents, so it is the
    // agent's own SAMPLES_KEPT-th newest row, not an id difference): done on every
    // insert it was ~9% of all the instructions of a run. Every PRUNE_EVERY-th
    // insert cuts for every agent, so an agent keeps at most PRUNE_EVERY more,
    // which `recent_samples` never returns.
    if c.last_insert_rowid() % PRUNE_EVERY == 0 {
        for a in Agent::ALL {
            c.prepare_cached(
                "DELETE FROM agent_samples WHERE agent = ?1 AND id < (
                     SELECT id FROM agent_samples WHERE agent = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )
            .map_err(unavailable)?
            .execute(params![a.as_str(), SAMPLES_KEPT - 1])
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Runs `group` in one transaction, commits, answers; returns how many of its requests
/// wrote something that was committed.
///
/// The requests run one after another without savepoints: a savepoint's journal copies
/// every page its request touches, which was 5–8% of all the instructions of a run under
/// load. A request that fails before writing anything (a conflict its reads found — the
/// usual failure: parallel agents racing to start a run) has nothing to undo. Should one
/// fail after writing, its writes cannot be told apart from the others', so the
/// transaction is rolled back and the group runs again, each request in a savepoint of
/// its own — the requests before it see the same database as the first time and do the
/// same; the failing one fails alone.
fn commit_group(db: &mut Db, mut group: Vec<Job>) -> u64 {
    let Db { conn, states } = db;
    let conn: &Connection = conn;
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if !conn.is_autocommit() {
        // Left open by a request that panicked: nothing of it was answered.
        let _ = run("ROLLBACK");
        states.clear();
    }
    let begin = || {
        run("BEGIN IMMEDIATE").map_err(|e| {
            // Nothing of the group runs; dropping it answers every caller `Unavailable`.
            tracing::error!(error = %crate::errors::Chain(&e), "cannot begin a transaction");
        })
    };
    if begin().is_err() {
        return 0;
    }
    // Holding the write lock, nobody else can commit until this transaction ends.
    if let Err(e) = states.follow(conn) {
        tracing::error!(error = %crate::errors::Chain(&e), "cannot read the file's data version");
        let _ = run("ROLLBACK");
        states.clear();
        return 0;
    }
    // A request that panics must not take its leader (another caller, or the store
    // thread) down with it, nor leave the others waiting: the whole transaction is rolled
    // back and every caller answered `Unavailable` — as when a savepoint cannot be opened.
    let guarded = |job: &mut Job, states: &mut States, savepoint: bool| -> Result<bool, String> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if savepoint {
                in_savepoint(conn, states, job)
            } else {
                Ok(job.run(conn, states))
            }
        })) {
            Ok(Ok(ok)) => Ok(ok),
            Ok(Err(e)) => Err(format!("savepoint: {e}")),
            Err(_) => Err("a request of the same transaction panicked".into()),
        }
    };
    let abort = |why: String| {
        tracing::error!(reason = %why, "a store transaction is rolled back");
        let _ = run("ROLLBACK");
        Err(why)
    };
    let commit_or_roll_back = || {
        let commit = run("COMMIT").map(|_| ()).map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = run("ROLLBACK");
        }
        commit
    };
    // Whether every request succeeded or failed before writing anything (a conflict found
    // by its reads); `false` when one failed after writing, `Err` when the transaction is
    // lost.
    let alone = group.len() == 1;
    let mut first = Ok(true);
    // Requests that wrote (what they wrote is committed with the group, or nothing is).
    let mut wrote = 0;
    for job in group.iter_mut() {
        let before = conn.total_changes();
        match guarded(job, states, false) {
            Ok(true) => wrote += u64::from(conn.total_changes() != before),
            Ok(false) if conn.is_autocommit() && !alone => {
                // SQLite rolled the transaction back itself (an I/O or full-disk error).
                first = Err("the transaction was rolled back by SQLite".to_string());
                break;
            }
            Ok(false) if conn.total_changes() == before => {}
            Ok(false) => {
                first = Ok(false);
                break;
            }
            Err(why) => {
                first = Err(why);
                break;
            }
        }
    }
    let commit = match first {
        Ok(true) => commit_or_roll_back(),
        // Alone: its own error is its answer, and nothing of it is kept (SQLite may have
        // rolled the transaction back itself already, on an I/O or full-disk error). A
        // failed request left the kept states as they were.
        Ok(false) if alone => {
            if !conn.is_autocommit() {
                let _ = run("ROLLBACK");
            }
            Ok(())
        }
        Ok(false) => {
            if !conn.is_autocommit() {
                let _ = run("ROLLBACK");
            }
            // The requests before the failing one wrote, and kept what they wrote.
            states.clear();
            if begin().is_err() {
                return 0;
            }
            wrote = 0;
            let mut again = None;
            for job in group.iter_mut() {
                let before = conn.total_changes();
                match guarded(job, states, true) {
                    Ok(ok) => wrote += u64::from(ok && conn.total_changes() != before),
                    Err(why) => {
                        again = Some(why);
                        break;
                    }
                }
            }
            match again {
                None => commit_or_roll_back(),
                Some(why) => abort(why),
            }
        }
        Err(why) => abort(why),
    };
    if commit.is_err() {
        states.clear();
        wrote = 0;
    }
    for job in group {
        job.finish(commit.clone());
    }
    wrote
}

/// One artifact by id, `None` if unknown.
fn read_artifact(c: &Connection, id: &str) -> Result<Option<Artifact>, StoreError> {
    artifact_row(c, id)?.map(parse_artifact).transpose()
}

/// An artifact's stored body and audit report, unparsed: parsing is left to the caller,
/// outside the store's one-at-a-time groups.
fn artifact_row(c: &Connection, id: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
    c.prepare_cached(READ_ARTIFACT)
        .map_err(unavailable)?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(unavailable)
}

/// An artifact with its audit report (kept in its own column since schema v5; a file
/// from before has it inside the body).
fn parse_artifact((body, audit): (String, Option<String>)) -> Result<Artifact, StoreError> {
    let mut artifact: Artifact =
        serde_json::from_str(&body).map_err(|e| StoreError::corrupt("artifact", e))?;
    if let Some(a) = audit {
        artifact.audit =
            Some(serde_json::from_str(&a).map_err(|e| StoreError::corrupt("audit report", e))?);
    }
    Ok(artifact)
}

fn run_exists(c: &Connection, run_id: RunId) -> Result<bool, StoreError> {
    let found: Option<i64> = c
        .prepare_cached("SELECT 1 FROM runs WHERE run_id = ?1")
        .map_err(unavailable)?
        .query_row(params![run_id.encode(&mut [0; ULID_LEN])], |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    Ok(found.is_some())
}

fn nanos(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos() as i64
}

fn from_nanos(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(n as i128)
        .map_err(|e| StoreError::corrupt("timestamp", e))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_resetting_wal_at(path, WAL_RESET_FRAMES)
    }

    fn open_resetting_wal_at(path: impl AsRef<Path>, frames: i64) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(unavailable)?;
        // The writing connection never checkpoints (and never fsyncs for it): see below.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(unavailable)?;
        let store = Self::init(conn)?;
        store.checkpoint_in_background(path, frames)?;
        Ok(store)
    }

    /// Moves WAL checkpoints (and their fsync) off the writers' path: a second connection
    /// checkpoints every 200 ms until the store is dropped.
    ///
    /// Under a steady stream of commits a checkpoint never catches up with the writer, so
    /// the WAL is never started again from its beginning and grows without bound (600 MiB
    /// over `campaign bench`'s throughput phase, every frame written to new file blocks).
    /// Once it holds [`WAL_RESET_FRAMES`] after a checkpoint, the writer checkpoints once
    /// between two groups — only what was committed since is left to copy, and nobody
    /// writes meanwhile — and its next transaction writes the WAL from its start again.
    /// When a checkpoint has copied the whole WAL (more than one frame), the checkpointer
    /// makes the next write itself, if the connection is free ([`Shared::restart_wal`]).
    fn checkpoint_in_background(
        &self,
        path: std::path::PathBuf,
        reset_frames: i64,
    ) -> Result<(), StoreError> {
        let alive = Arc::downgrade(&self.alive);
        let shared = Arc::downgrade(&self.shared);
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        let checkpointer = Connection::open(path).map_err(unavailable)?;
        // (frames in the WAL, frames of them copied to the database file), of the
        // pragma's (busy, frames in the WAL, frames checkpointed)
        let checkpoint = move || -> Result<(i64, i64), rusqlite::Error> {
            checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
        };
        let failed = |e: rusqlite::Error| {
            tracing::warn!(error = %crate::errors::Chain(&e), "WAL checkpoint failed");
        };
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while alive.upgrade().is_some() {
                    std::thread::sleep(Duration::from_millis(200));
                    let (frames, copied) = match checkpoint() {
                        Ok(f) => f,
                        Err(e) => {
                            failed(e);
                            continue;
                        }
                    };
                    if frames < reset_frames {
                        // More than the one frame of a restart: after it, the next
                        // checkpoint copies that frame, and an idle store stays idle.
                        if copied == frames && frames > 1 {
                            match shared.upgrade() {
                                Some(s) => s.restart_wal(),
                                None => return,
                            }
                        }
                        continue;
                    }
                    // Before asking the writer: flush the WAL to disk here, then copy what
                    // was committed meanwhile, so the writer's own checkpoint — on the
                    // store's one thread, between two groups — has little left to sync or
                    // copy (~40 → ~28 ms each under the throughput load; BENCHMARKS.md,
                    // eleventh part). Best effort: the writer's checkpoint does it all
                    // anyway.
                    if let Ok(f) = std::fs::File::open(&wal) {
                        let _ = f.sync_data();
                    }
                    if let Err(e) = checkpoint() {
                        failed(e);
                    }
                    match shared.upgrade() {
                        Some(s) => s
                            .wal_reset
                            .store(true, std::sync::atomic::Ordering::Relaxed),
                        None => return,
                    }
                }
            })
            .map_err(unavailable)?;
        Ok(())
    }

    /// The disk's durable-commit floor, for the bench: `n` single-row transactions
    /// committed one after another on a fresh file at `path` with the store's own settings
    /// (WAL, synchronous=NORMAL, checkpoints off the writer), per second.
    pub fn commit_floor(path: impl AsRef<Path>, n: usize) -> Result<f64, StoreError> {
        let conn = Connection::open(path.as_ref()).map_err(unavailable)?;
        for (k, v) in [
            ("journal_mode", "WAL"),
            ("synchronous", "NORMAL"),
            ("wal_autocheckpoint", "0"),
        ] {
            conn.pragma_update(None, k, v).map_err(unavailable)?;
        }
        conn.execute_batch("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, v TEXT)")
            .map_err(unavailable)?;
        let mut st = conn
            .prepare("INSERT INTO floor (v) VALUES (?1)")
            .map_err(unavailable)?;
        let started = std::time::Instant::now();
        for i in 0..n {
            // Outside an explicit transaction every statement commits by itself.
            st.execute(params![format!("row {i}")])
                .map_err(unavailable)?;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    }

    /// A private in-memory database (tests and benchmarks that need no file).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(unavailable)?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        // WAL + synchronous=NORMAL: a committed transaction survives a crash of this
        // process; only an OS crash or power loss can drop the last few commits.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(unavailable)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        // Every statement stays prepared: with rusqlite's default of 16 cached statements
        // the store's ~36 evicted each other, and re-preparing them was 6% of all the
        // instructions of a run (callgrind, `campaign bench`).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        migrations().to_latest(&mut conn).map_err(unavailable)?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(unavailable)?;
        let (wake, woken) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            conn: std::sync::Mutex::new(Db {
                conn,
                states: States::new(),
            }),
            queue: std::sync::Mutex::new(Vec::new()),
            wake,
            counts: Counters::default(),
            wal_reset: Default::default(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || store_thread(weak, woken))
            .map_err(unavailable)?;
        Ok(SqliteStore {
            shared,
            alive: Arc::new(()),
        })
    }

    /// Runs `f` inside a group's transaction and answers once the group is committed — on
    /// this caller's thread when the store is idle. `f` may run more than once (see
    /// [`commit_group`]): it must depend only on what it captured and on the database.
    async fn with<T, F>(&self, mut f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.with_states(move |c, _| f(c)).await
    }

    /// [`SqliteStore::with`] for a request that reads or writes runs' kept [`States`].
    async fn with_states<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut States) -> Result<T, StoreError> + Send + 'static,
    {
        let answer = self.enqueue(f);
        self.shared.lead();
        self.answer(answer).await
    }

    /// Queues a request without leading: what is queued before the next lead commits in
    /// one transaction (each request in its own savepoint).
    fn enqueue<T, F>(&self, f: F) -> Answer<T, F>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut States) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, result) = tokio::sync::oneshot::channel();
        Counters::add(&self.shared.counts.requests);
        self.shared.queue().push(Box::new(Pending {
            f,
            outcome: None,
            answer,
        }));
        result
    }

    /// The answer to a queued request.
    async fn answer<T, F>(&self, result: Answer<T, F>) -> Result<T, StoreError> {
        let answer = match result.await {
            Ok((answer, f)) => {
                drop(f);
                answer
            }
            Err(_) => Err(StoreError::Unavailable(
                "the store request was dropped: its transaction failed".into(),
            )),
        };
        if answer.is_err() {
            Counters::add(&self.shared.counts.refused);
        }
        answer
    }

    /// What this store has done since it was opened.
    pub fn counts(&self) -> StoreCounts {
        let c = &self.shared.counts;
        let get = |n: &std::sync::atomic::AtomicU64| n.load(std::sync::atomic::Ordering::Relaxed);
        StoreCounts {
            requests: get(&c.requests),
            refused: get(&c.refused),
            writes: get(&c.writes),
            groups: get(&c.groups),
        }
    }

    /// Runs due for a deferred audit at `now`, oldest first.
    pub async fn due_deferred(&self, now: OffsetDateTime) -> Result<Vec<(RunId, u32)>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached("SELECT run_id, attempts FROM deferred_audits WHERE due_at <= ?1 ORDER BY due_at")
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![nanos(now)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, n) = row.map_err(unavailable)?;
                out.push((RunId::parse(&id).map_err(|e| StoreError::corrupt("run id", e))?, n));
            }
            Ok(out)
        })
        .await
    }

    /// Pushes a deferred audit back after a failed attempt.
    pub async fn reschedule_deferred(
        &self,
        run_id: RunId,
        due: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.with(move |c| {
            c.prepare_cached(
                "UPDATE deferred_audits SET due_at = ?2, attempts = attempts + 1 WHERE run_id = ?1",
            )
            .map_err(unavailable)?
            .execute(params![run_id.to_string(), nanos(due)])
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    /// Removes a deferred audit that has been handled.
    pub async fn remove_deferred(&self, run_id: RunId) -> Result<(), StoreError> {
        self.with(move |c| {
            c.prepare_cached("DELETE FROM deferred_audits WHERE run_id = ?1")
                .map_err(unavailable)?
                .execute(params![run_id.to_string()])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::corrupt("serialize", e))
}

fn insert_event(tx: &Connection, run_id: &str, seq: u64, body: &str) -> Result<(), StoreError> {
    insert_events(tx, run_id, &[(seq, body)])
}

/// The most events of one run [`insert_events`] writes with one statement.
const EVENTS_AT_ONCE: usize = 4;

/// The statements inserting 1 to [`EVENTS_AT_ONCE`] events of one run: `?1` is the run
/// id, then each event's seq and body.
const INSERT_EVENTS: [&str; EVENTS_AT_ONCE] = [
    "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3)",
    "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3), (?1, ?4, ?5)",
    "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3), (?1, ?4, ?5), (?1, ?6, ?7)",
    "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3), (?1, ?4, ?5), (?1, ?6, ?7),
         (?1, ?8, ?9)",
];

/// Inserts a run's events, `(seq, body)` each, with one statement per [`EVENTS_AT_ONCE`]:
/// a transition of several changes (a run's start and its agents') wrote one statement
/// per event, and what a statement costs besides its row — taken from the statement
/// cache and put back, bound, begun, ended — was ~2k of an event's ~9.5k instructions.
fn insert_events(tx: &Connection, run_id: &str, events: &[(u64, &str)]) -> Result<(), StoreError> {
    for chunk in events.chunks(EVENTS_AT_ONCE) {
        let mut st = tx
            .prepare_cached(INSERT_EVENTS[chunk.len() - 1])
            .map_err(unavailable)?;
        st.raw_bind_parameter(1, run_id).map_err(unavailable)?;
        for (k, &(seq, body)) in chunk.iter().enumerate() {
            st.raw_bind_parameter(2 + 2 * k, seq as i64)
                .map_err(unavailable)?;
            st.raw_bind_parameter(3 + 2 * k, body)
                .map_err(unavailable)?;
        }
        st.raw_execute().map_err(unavailable)?;
    }
    Ok(())
}

/// An event as the events table keeps it (schema v6): the run id and seq are the row's
/// key, the body holds the rest. Bodies written before also hold the ids: ignored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredEvent<'a> {
    #[serde(rename = "type")]
    kind: crate::domain::EventType,
    scope: crate::domain::Scope,
    status: Status,
    #[serde(with = "crate::domain::rfc3339")]
    at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<std::borrow::Cow<'a, serde_json::Value>>,
}

impl StoredEvent<'_> {
    /// The body of `e`.
    fn body_of(e: &Event) -> Result<String, StoreError> {
        json(&StoredEvent {
            kind: e.kind,
            scope: e.scope,
            status: e.status,
            at: e.at,
            detail: e.detail.as_ref().map(std::borrow::Cow::Borrowed),
        })
    }

    /// The body of the event `ch` makes (its detail serialized in place, not copied).
    fn body_of_change(ch: &Change, at: OffsetDateTime) -> Result<String, StoreError> {
        json(&StoredEvent {
            kind: crate::domain::EventType::for_scope(ch.scope),
            scope: ch.scope,
            status: ch.to,
            at,
            detail: ch.detail.as_ref().map(std::borrow::Cow::Borrowed),
        })
    }

    fn parse(body: &str) -> Result<StoredEvent<'static>, StoreError> {
        serde_json::from_str(body).map_err(|e| StoreError::corrupt("event", e))
    }

    fn into_event(self, run_id: RunId, seq: u64) -> Event {
        Event {
            run_id,
            seq,
            kind: self.kind,
            scope: self.scope,
            status: self.status,
            at: self.at,
            detail: self.detail.map(std::borrow::Cow::into_owned),
        }
    }
}

/// What a change writes as JSON, serialized by the caller before its request queues for
/// the store's one-at-a-time groups (serializing inside them was a tenth of their work).
struct Written {
    /// The change's artifact as the store keeps it (moved out of the change: its id is
    /// read from here, not from the change).
    kept: Option<Arc<Artifact>>,
    event: String,
    artifact: Option<String>,
    audit: Option<String>,
    envelope: Option<String>,
}

impl Written {
    fn of(ch: &mut Change, at: OffsetDateTime) -> Result<Written, StoreError> {
        let kept = ch.artifact.take().map(Arc::new);
        Ok(Written {
            // The seq is the row's, given when the change is applied.
            event: StoredEvent::body_of_change(ch, at)?,
            artifact: kept.as_deref().map(json).transpose()?,
            kept,
            audit: ch.audit.as_ref().map(json).transpose()?,
            envelope: ch.envelope.as_ref().map(json).transpose()?,
        })
    }
}

/// `written[i]` is what `changes[i]` writes ([`Written::of`]).
fn apply_tx(
    tx: &Connection,
    states: &mut States,
    run_id: RunId,
    changes: &[Change],
    written: &[Written],
    at: OffsetDateTime,
) -> Result<Vec<Event>, StoreError> {
    let (snap, mut seq, mut agents) = states.with(tx, run_id, |run, seq| {
        let snap = Snapshot {
            run: run.status,
            agents: run.agents.iter().map(|(a, s)| (*a, s.status)).collect(),
        };
        (snap, seq, run.agents.clone())
    })?;
    let checked = transition::check(snap, changes).map_err(|r| StoreError::refused(run_id, r))?;
    let mut events = Vec::with_capacity(checked.effective.len());
    if checked.effective.is_empty() {
        return Ok(events);
    }
    let mut id_buf = [0; ULID_LEN];
    let id = run_id.encode(&mut id_buf);
    // The run's own row is written once, after its events: its status (the last
    // run-scoped change's), envelope (the last one given) and agents (if any changed),
    // with its seq.
    let mut run_status: Option<Status> = None;
    let mut agents_changed = false;
    let mut envelope: Option<&str> = None;
    // The audit reports recorded, by artifact, and the artifacts written.
    let mut audited_now = Vec::new();
    let mut written_now = Vec::new();
    // The events' (seq, body), inserted together once every change is checked.
    let mut bodies = Vec::with_capacity(checked.effective.len());
    for &ch in &checked.effective {
        let w = changes
            .iter()
            .position(|c| std::ptr::eq(c, ch))
            .and_then(|i| written.get(i))
            .ok_or_else(|| StoreError::corrupt("apply", "a change without its written form"))?;
        match ch.scope.agent() {
            None => {
                run_status = Some(ch.to);
                envelope = w.envelope.as_deref().or(envelope);
            }
            Some(agent) => {
                // The agent as the kept state knows it, and as this batch sets it
                // (`transition::check` refused any change of an agent the run does not have).
                let Some(state) = agents.get_mut(&agent) else {
                    return Err(StoreError::corrupt("apply", format!("no {agent} agent")));
                };
                mirror_agent(state, ch, w.kept.as_ref().map(|a| a.artifact_id));
                agents_changed = true;
                let known = state.artifact_id;
                // The change's artifact, as moved out of the change for keeping.
                if let Some(a) = &w.kept {
                    tx.prepare_cached(
                        "INSERT INTO artifacts (artifact_id, run_id, body) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(unavailable)?
                    .execute(params![
                        a.artifact_id.encode(&mut [0; ULID_LEN]),
                        id,
                        w.artifact
                    ])
                    .map_err(unavailable)?;
                    written_now.push(Arc::clone(a));
                }
                if let (Some(audit), Some(report)) = (&w.audit, &ch.audit) {
                    let audited = known.ok_or_else(|| {
                        StoreError::corrupt("audit", format!("{agent} has no artifact to audit"))
                    })?;
                    // The report has a table of its own: the artifact's row is not read
                    // or written again to carry it (a later report replaces it).
                    tx.prepare_cached(
                        "INSERT INTO audits (artifact_id, report) VALUES (?1, ?2)
                         ON CONFLICT (artifact_id) DO UPDATE SET report = excluded.report",
                    )
                    .map_err(unavailable)?
                    .execute(params![audited.encode(&mut [0; ULID_LEN]), audit])
                    .map_err(|e| match e.sqlite_error_code() {
                        // The key refers to the artifact (foreign keys are on).
                        Some(rusqlite::ErrorCode::ConstraintViolation) => {
                            StoreError::corrupt("audit", format!("artifact {audited} is missing"))
                        }
                        _ => unavailable(e),
                    })?;
                    audited_now.push((audited, report));
                }
            }
        }
        seq += 1;
        bodies.push((seq, w.event.as_str()));
        events.push(Event::of_change(run_id, seq, ch, at));
    }
    insert_events(tx, id, &bodies)?;
    let agents_json = agents_changed.then(|| json(&agents)).transpose()?;
    match run_status {
        // Without a status the run's partial index of unfinished runs is not touched.
        None => tx
            .prepare_cached(SET_RUN_SEQ)
            .map_err(unavailable)?
            .execute(params![id, seq as i64, nanos(at), agents_json]),
        Some(status) => tx
            .prepare_cached(SET_RUN_STATUS)
            .map_err(unavailable)?
            .execute(params![
                id,
                seq as i64,
                nanos(at),
                status.as_str(),
                envelope,
                agents_json
            ]),
    }
    .map_err(unavailable)?;
    // Every statement succeeded: the kept state follows what was written.
    let updated_at = from_nanos(nanos(at))?;
    if let Some(kept) = states.runs.get_mut(&run_id) {
        let run = Arc::make_mut(&mut kept.run);
        for ch in &checked.effective {
            if ch.scope.agent().is_none() {
                mirror_run(run, ch);
            }
        }
        run.agents = agents;
        run.updated_at = updated_at;
        kept.seq = seq;
        kept.marks.extend(events.iter().map(Mark::of));
        for a in written_now {
            kept.artifacts.push(a.artifact_id);
            states.artifacts.insert(a.artifact_id, a);
        }
        for (id, report) in audited_now {
            if let Some(artifact) = states.artifacts.get_mut(&id) {
                Arc::make_mut(artifact).audit = Some(report.clone());
            }
        }
        // A closed run stays until its close is read (`closed_run`, right after).
    }
    Ok(events)
}

/// What [`apply_tx`]'s statements do to a run's own state (a run-scoped change), done to
/// the kept one.
fn mirror_run(run: &mut Run, ch: &Change) {
    run.status = ch.to;
    if let Some(e) = &ch.envelope {
        run.envelope = Some(e.clone());
    }
}

/// What an agent's change does to its state (in the run's row, and kept).
/// `artifact`: the id of the artifact the change stores ([`Written::kept`]).
fn mirror_agent(st: &mut AgentState, ch: &Change, artifact: Option<ArtifactId>) {
    st.status = ch.to;
    if let Some(e) = &ch.error {
        st.error = Some(e.clone());
    }
    if artifact.is_some() {
        st.artifact_id = artifact;
    }
    if ch.to == Status::Generating {
        st.attempts += 1;
    }
    if let Some(report) = &ch.audit {
        st.verdict = Some(report.verdict);
    }
}

/// Briefs recently read, by run (per store thread). A run's brief never changes once
/// stored, and parsing it was the largest single cost of reading a run's state, which
/// every step of the flow does.
const BRIEF_CACHE: usize = 256;

thread_local! {
    static BRIEFS: std::cell::RefCell<hashlink::LruCache<RunId, Brief>> =
        std::cell::RefCell::new(hashlink::LruCache::new(BRIEF_CACHE));
}

fn cached_brief(run_id: RunId, text: &str) -> Result<Brief, StoreError> {
    if let Some(b) = BRIEFS.with(|c| c.borrow_mut().get(&run_id).cloned()) {
        return Ok(b);
    }
    let brief: Brief = serde_json::from_str(text).map_err(|e| StoreError::corrupt("brief", e))?;
    BRIEFS.with(|c| c.borrow_mut().insert(run_id, brief.clone()));
    Ok(brief)
}

/// `full`: with artifacts and timings (what clients see); without, what flow steps need.
fn read_run(c: &Connection, run_id: RunId, full: bool) -> Result<Run, StoreError> {
    read_run_and_seq(c, run_id, full).map(|(run, _)| run)
}

/// A run's state (see [`read_run`]) and the seq of its last event.
fn read_state(c: &Connection, run_id: RunId) -> Result<(Run, u64), StoreError> {
    read_run_and_seq(c, run_id, false)
}

fn read_run_and_seq(c: &Connection, run_id: RunId, full: bool) -> Result<(Run, u64), StoreError> {
    type Row = (
        Option<String>,
        u32,
        String,
        String,
        String,
        i64,
        i64,
        Option<String>,
        Option<String>,
        i64,
        String,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT parent_run_id, iteration, status, execution_mode, brief, created_at, updated_at, envelope, mode_decision, seq, agents
             FROM runs WHERE run_id = ?1",
        )
        .map_err(unavailable)?
        .query_row(params![run_id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?))
        })
        .optional()
        .map_err(unavailable)?;
    let (parent, iteration, status, mode, brief, created, updated, envelope, decision, seq, agents) =
        row.ok_or(StoreError::NotFound(run_id))?;
    let mode_decision = decision
        .map(|d| serde_json::from_str(&d))
        .transpose()
        .map_err(|e| StoreError::corrupt("mode decision", e))?;
    let brief = cached_brief(run_id, &brief)?;
    let envelope: Option<Envelope> = envelope
        .map(|e| serde_json::from_str(&e))
        .transpose()
        .map_err(|e| StoreError::corrupt("envelope", e))?;
    let agents: std::collections::BTreeMap<Agent, AgentState> =
        serde_json::from_str(&agents).map_err(|e| StoreError::corrupt("agents", e))?;
    let artifact_ids: Vec<ArtifactId> = agents.values().filter_map(|a| a.artifact_id).collect();
    let mut artifacts = Vec::with_capacity(artifact_ids.len());
    for id in artifact_ids.into_iter().filter(|_| full) {
        artifacts.push(read_artifact(c, &id.to_string())?.ok_or_else(|| {
            StoreError::corrupt("artifact", format!("{id} is referenced but missing"))
        })?);
    }
    let created_at = from_nanos(created)?;
    let timings = if full {
        timings_from_marks(created_at, &read_marks(c, run_id)?)
    } else {
        Default::default()
    };
    let run = Run {
        run_id,
        parent_run_id: parent
            .map(|p| RunId::parse(&p))
            .transpose()
            .map_err(|e| StoreError::corrupt("parent id", e))?,
        iteration,
        status: status
            .parse()
            .map_err(|e| StoreError::corrupt("run status", e))?,
        execution_mode: mode
            .parse::<ExecutionMode>()
            .map_err(|e| StoreError::corrupt("mode", e))?,
        mode_decision,
        brief,
        created_at,
        updated_at: from_nanos(updated)?,
        agents,
        artifacts,
        timings,
        envelope,
    };
    Ok((run, seq as u64))
}

/// An event body read for its [`Mark`] only: the detail's other fields, the ids and the
/// kind are skipped, not built (parsing whole events was ~3% of a run's instructions, for
/// the metrics of its close).
#[derive(serde::Deserialize)]
struct MarkBody {
    scope: crate::domain::Scope,
    status: Status,
    #[serde(with = "crate::domain::rfc3339")]
    at: OffsetDateTime,
    #[serde(default)]
    detail: Option<MarkDetail>,
}

#[derive(serde::Deserialize)]
struct MarkDetail {
    #[serde(default)]
    verdict: Option<serde::de::IgnoredAny>,
}

/// The marks of a run's event log, in order.
fn read_marks(c: &Connection, run_id: RunId) -> Result<Vec<Mark>, StoreError> {
    marks_of(run_id, &event_bodies(c, run_id)?)
}

/// The bodies of a run's events, in order, unparsed: parsing is left to the caller,
/// outside the store's one-at-a-time groups.
fn event_bodies(c: &Connection, run_id: RunId) -> Result<Vec<String>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT body FROM events WHERE run_id = ?1 ORDER BY seq")
        .map_err(unavailable)?;
    let rows = st
        .query_map(params![run_id.to_string()], |r| r.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|r| r.map_err(unavailable)).collect()
}

/// The marks of a run's event bodies (all of them, in order).
fn marks_of(run_id: RunId, bodies: &[String]) -> Result<Vec<Mark>, StoreError> {
    let mut out = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        let mark = match serde_json::from_str::<MarkBody>(body) {
            Ok(m) => Mark {
                scope: m.scope,
                status: m.status,
                at: m.at,
                verdict: m.detail.is_some_and(|d| d.verdict.is_some()),
            },
            // A detail that is not an object: read the whole event.
            Err(_) => Mark::of(&StoredEvent::parse(body)?.into_event(run_id, i as u64 + 1)),
        };
        out.push(mark);
    }
    Ok(out)
}

fn read_events(c: &Connection, run_id: RunId, after: u64) -> Result<Vec<Event>, StoreError> {
    let mut st = c
        .prepare_cached("SELECT seq, body FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq")
        .map_err(unavailable)?;
    let rows = st
        .query_map(params![run_id.to_string(), after as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body) = row.map_err(unavailable)?;
        out.push(StoredEvent::parse(&body)?.into_event(run_id, seq as u64));
    }
    Ok(out)
}

#[async_trait]
impl RunStore for SqliteStore {
    async fn create_run(&self, new: NewRun) -> Result<Event, StoreError> {
        // Serialized before the request queues (see [`Written`]).
        let brief = json(&new.brief)?;
        let mode_decision = new.mode_decision.as_ref().map(json).transpose()?;
        let event = new.first_event();
        let body = StoredEvent::body_of(&event)?;
        // Kept as the file will read it back: the brief as parsed from what is stored,
        // times to the nanosecond.
        let at = nanos(new.created_at);
        let state = {
            let parsed =
                serde_json::from_str(&brief).map_err(|e| StoreError::corrupt("brief", e))?;
            let mut state = new.state(parsed);
            state.created_at = from_nanos(at)?;
            state.updated_at = state.created_at;
            Arc::new(state)
        };
        let agents = json(&state.agents)?;
        self.with_states(move |tx, states| {
            let mut id_buf = [0; ULID_LEN];
            let id = new.run_id.encode(&mut id_buf);
            if run_exists(tx, new.run_id)? {
                return Err(StoreError::AlreadyExists(new.run_id));
            }
            tx.prepare_cached(INSERT_RUN)
                .map_err(unavailable)?
                .execute(params![
                    id,
                    new.parent_run_id.map(|p| p.to_string()),
                    new.iteration,
                    new.execution_mode.as_str(),
                    brief,
                    at,
                    mode_decision,
                    agents
                ])
                .map_err(unavailable)?;
            insert_event(tx, id, event.seq, &body)?;
            let kept = Kept {
                run: Arc::clone(&state),
                seq: 1,
                marks: vec![Mark::of(&event)],
                artifacts: Vec::new(),
            };
            states.keep(new.run_id, kept);
            Ok(event.clone())
        })
        .await
    }

    /// One request: the state and the marks of its events — kept (and no longer kept once
    /// its close is read), or read from the file.
    async fn closed_run(&self, run_id: RunId) -> Result<Run, StoreError> {
        let (run, marks) = self
            .with_states(move |c, states| {
                let (run, marks) =
                    states.with_kept(c, run_id, true, |k| (Arc::clone(&k.run), k.marks.clone()))?;
                if run.status.is_terminal() {
                    states.forget(run_id);
                }
                Ok((run, marks))
            })
            .await?;
        let mut run = Arc::unwrap_or_clone(run);
        run.timings = timings_from_marks(run.created_at, &marks);
        Ok(run)
    }

    async fn get_run(&self, run_id: RunId) -> Result<Run, StoreError> {
        self.with(move |c| read_run(c, run_id, true)).await
    }

    async fn get_state(&self, run_id: RunId) -> Result<Run, StoreError> {
        self.with_states(move |c, states| {
            states.with_kept(c, run_id, false, |k| Arc::clone(&k.run))
        })
        .await
        .map(Arc::unwrap_or_clone)
    }

    async fn list_runs(
        &self,
        limit: usize,
        cursor: Option<&str>,
        status: Option<Status>,
    ) -> Result<RunPage, StoreError> {
        let after = match cursor {
            Some(c) => Some(RunId::parse(c).map_err(|_| StoreError::BadCursor(c.to_string()))?),
            None => None,
        };
        let limit = limit.clamp(1, 100);
        self.with(move |c| {
            let ids: Vec<String> = {
                let mut st = c
                    .prepare_cached(
                        "SELECT run_id FROM runs WHERE (?1 IS NULL OR run_id < ?1) AND (?3 IS NULL OR status = ?3) ORDER BY run_id DESC LIMIT ?2",
                    )
                    .map_err(unavailable)?;
                let rows = st
                    .query_map(params![after.map(|a| a.to_string()), limit as i64 + 1, status.map(Status::as_str)], |r| r.get(0))
                    .map_err(unavailable)?;
                rows.collect::<Result<_, _>>().map_err(unavailable)?
            };
            let more = ids.len() > limit;
            let mut runs = Vec::new();
            for id in ids.into_iter().take(limit) {
                runs.push(read_run(c, RunId::parse(&id).map_err(|e| StoreError::corrupt("run id", e))?, false)?.summary());
            }
            let next_cursor = if more { runs.last().map(|r| r.run_id.to_string()) } else { None };
            Ok(RunPage { runs, next_cursor })
        })
        .await
    }

    async fn apply(
        &self,
        run_id: RunId,
        mut changes: Vec<Change>,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>, StoreError> {
        let written = changes
            .iter_mut()
            .map(|ch| Written::of(ch, at))
            .collect::<Result<Vec<_>, _>>()?;
        self.with_states(move |tx, states| apply_tx(tx, states, run_id, &changes, &written, at))
            .await
    }

    async fn bump_attempts(&self, run_id: RunId, agent: Agent) -> Result<u32, StoreError> {
        self.with_states(move |tx, states| {
            let (run_status, mut agents) =
                states.with(tx, run_id, |run, _| (run.status, run.agents.clone()))?;
            let Some(state) = agents.get_mut(&agent) else {
                return Err(StoreError::NotFound(run_id));
            };
            let current = state.status;
            if run_status.is_terminal() || current != Status::Generating {
                return Err(StoreError::Conflict {
                    run_id,
                    scope: agent.into(),
                    expected: Status::Generating,
                    actual: current,
                    run_terminal: run_status.is_terminal(),
                });
            }
            state.attempts += 1;
            let n = state.attempts;
            tx.prepare_cached("UPDATE runs SET agents = ?2 WHERE run_id = ?1")
                .map_err(unavailable)?
                .execute(params![run_id.to_string(), json(&agents)?])
                .map_err(unavailable)?;
            if let Some(kept) = states.runs.get_mut(&run_id) {
                Arc::make_mut(&mut kept.run).agents = agents;
            }
            Ok(n)
        })
        .await
    }

    async fn events(&self, run_id: RunId, after: u64) -> Result<Vec<Event>, StoreError> {
        self.with(move |c| {
            if !run_exists(c, run_id)? {
                return Err(StoreError::NotFound(run_id));
            }
            read_events(c, run_id, after)
        })
        .await
    }

    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare_cached(UNFINISHED).map_err(unavailable)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(
                    RunId::parse(&row.map_err(unavailable)?)
                        .map_err(|e| StoreError::corrupt("run id", e))?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// A kept artifact as it is, or the file's row, parsed once the request is answered.
    async fn get_artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError> {
        let found = self
            .with_states(move |c, states| match states.artifact(c, id)? {
                Some(kept) => Ok(Some(Ok(kept))),
                None => Ok(artifact_row(c, &id.to_string())?.map(Err)),
            })
            .await?;
        match found {
            None => Ok(None),
            Some(Ok(kept)) => Ok(Some(Arc::unwrap_or_clone(kept))),
            Some(Err(row)) => parse_artifact(row).map(Some),
        }
    }

    async fn record_sample(&self, s: AgentSample) -> Result<(), StoreError> {
        self.with(move |c| insert_sample(c, &s)).await
    }

    async fn apply_with_sample(
        &self,
        run_id: RunId,
        mut changes: Vec<Change>,
        at: OffsetDateTime,
        sample: AgentSample,
    ) -> (Result<Vec<Event>, StoreError>, Result<(), StoreError>) {
        let written = match changes
            .iter_mut()
            .map(|ch| Written::of(ch, at))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(w) => w,
            Err(e) => return (Err(e), self.record_sample(sample).await),
        };
        // Both queued before one lead: one group, one transaction. Still independent: a
        // request failing after it wrote has its group run again, each in a savepoint.
        let applied =
            self.enqueue(move |tx, states| apply_tx(tx, states, run_id, &changes, &written, at));
        let sampled = self.enqueue(move |c, _| insert_sample(c, &sample));
        self.shared.lead();
        tokio::join!(self.answer(applied), self.answer(sampled))
    }

    async fn recent_samples(
        &self,
        agent: Agent,
        limit: usize,
    ) -> Result<Vec<AgentSample>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT at, duration_ms, throttled FROM agent_samples WHERE agent = ?1 ORDER BY id DESC LIMIT ?2",
                )
                .map_err(unavailable)?;
            let rows = st
                // The table may hold up to PRUNE_EVERY more: the kept number is the bound.
                .query_map(params![agent.as_str(), (limit as i64).min(SAMPLES_KEPT)], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, bool>(2)?))
                })
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let (at, ms, throttled) = row.map_err(unavailable)?;
                out.push(AgentSample {
                    agent,
                    at: from_nanos(at)?,
                    duration_ms: ms.max(0) as u64,
                    throttled,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl BrandLibrary for SqliteStore {
    async fn create_brand(&self, kit: BrandKit) -> Result<(), BrandError> {
        let id = kit.brand_id.clone();
        let inserted = self
            .with(move |c| {
                c.prepare_cached(
                    "INSERT INTO brands (brand_id, version, body) VALUES (?1, ?2, ?3) ON CONFLICT (brand_id) DO NOTHING",
                )
                .map_err(unavailable)?
                .execute(params![kit.brand_id, kit.version, json(&kit)?])
                .map_err(unavailable)
            })
            .await?;
        if inserted == 0 {
            return Err(BrandError::AlreadyExists(id));
        }
        Ok(())
    }

    async fn get_brand(&self, brand_id: &str) -> Result<Option<BrandKit>, StoreError> {
        let id = brand_id.to_string();
        self.with(move |c| {
            c.prepare_cached("SELECT body FROM brands WHERE brand_id = ?1")
                .map_err(unavailable)?
                .query_row(params![id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(unavailable)?
                .map(|b| serde_json::from_str(&b).map_err(|e| StoreError::corrupt("brand kit", e)))
                .transpose()
        })
        .await
    }

    async fn list_brands(&self) -> Result<Vec<BrandKit>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached("SELECT body FROM brands ORDER BY brand_id")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for row in rows {
                let body = row.map_err(unavailable)?;
                out.push(
                    serde_json::from_str(&body).map_err(|e| StoreError::corrupt("brand kit", e))?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn replace_brand(&self, kit: BrandKit) -> Result<(), BrandError> {
        let id = kit.brand_id.clone();
        let version = kit.version;
        let current: Option<u32> = self
            .with(move |c| {
                let previous = kit.version.saturating_sub(1);
                let n = c
                    .prepare_cached(
                        "UPDATE brands SET version = ?2, body = ?3 WHERE brand_id = ?1 AND version = ?4",
                    )
                    .map_err(unavailable)?
                    .execute(params![kit.brand_id, kit.version, json(&kit)?, previous])
                    .map_err(unavailable)?;
                if n == 1 {
                    return Ok(Some(previous));
                }
                c.prepare_cached("SELECT version FROM brands WHERE brand_id = ?1")
                    .map_err(unavailable)?
                    .query_row(params![kit.brand_id], |r| r.get::<_, u32>(0))
                    .optional()
                    .map_err(unavailable)
            })
            .await?;
        match current {
            None => Err(BrandError::NotFound(id)),
            Some(v) if v == version - 1 => Ok(()),
            Some(current) => Err(BrandError::VersionMismatch {
                brand_id: id,
                expected: version - 1,
                current,
            }),
        }
    }

    async fn delete_brand(&self, brand_id: &str) -> Result<(), BrandError> {
        let id = brand_id.to_string();
        let n = self
            .with(move |c| {
                c.prepare_cached("DELETE FROM brands WHERE brand_id = ?1")
                    .map_err(unavailable)?
                    .execute(params![id])
                    .map_err(unavailable)
            })
            .await?;
        if n == 0 {
            return Err(BrandError::NotFound(brand_id.to_string()));
        }
        Ok(())
    }
}

#[async_trait]
impl DeferredAudits for SqliteStore {
    async fn enqueue(&self, run_id: RunId, delay: Duration) -> Result<(), StoreError> {
        let due = OffsetDateTime::now_utc() + delay;
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO deferred_audits (run_id, due_at, attempts) VALUES (?1, ?2, 0)
                 ON CONFLICT(run_id) DO NOTHING",
            )
            .map_err(unavailable)?
            .execute(params![run_id.to_string(), nanos(due)])
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl Subscriptions for SqliteStore {
    async fn connect(&self, connection_id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let (id, expires) = (
            connection_id.to_string(),
            (now + CONNECTION_TTL).unix_timestamp(),
        );
        let now = now.unix_timestamp();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM connections WHERE expires_at <= ?1")
                .map_err(unavailable)?
                .execute(params![now])
                .map_err(unavailable)?;
            c.prepare_cached(
                "INSERT INTO connections (connection_id, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (connection_id) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .map_err(unavailable)?
            .execute(params![id, expires])
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        let id = connection_id.to_string();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM connections WHERE connection_id = ?1")
                .map_err(unavailable)?
                .execute(params![id])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn subscribe(
        &self,
        connection_id: &str,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (id, expires) = (
            connection_id.to_string(),
            (now + CONNECTION_TTL).unix_timestamp(),
        );
        let now = now.unix_timestamp();
        self.with(move |c| {
            // The run's expired subscriptions go as a new one comes (DynamoDB's TTL does
            // the same there, eventually).
            c.prepare_cached("DELETE FROM subscriptions WHERE run_id = ?1 AND expires_at <= ?2")
                .map_err(unavailable)?
                .execute(params![run_id.to_string(), now])
                .map_err(unavailable)?;
            c.prepare_cached(
                "INSERT INTO subscriptions (run_id, connection_id, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (run_id, connection_id) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .map_err(unavailable)?
            .execute(params![run_id.to_string(), id, expires])
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn unsubscribe(&self, connection_id: &str, run_id: RunId) -> Result<(), StoreError> {
        let id = connection_id.to_string();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM subscriptions WHERE run_id = ?1 AND connection_id = ?2")
                .map_err(unavailable)?
                .execute(params![run_id.to_string(), id])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn subscribers(
        &self,
        run_id: RunId,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        self.with(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT connection_id FROM subscriptions
                     WHERE run_id = ?1 AND expires_at > ?2 ORDER BY connection_id",
                )
                .map_err(unavailable)?;
            let rows = st
                .query_map(params![run_id.to_string(), now.unix_timestamp()], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(unavailable)?;
            rows.collect::<Result<_, _>>().map_err(unavailable)
        })
        .await
    }
}

#[async_trait]
impl RequestKeys for SqliteStore {
    async fn claim_key(
        &self,
        key: &str,
        fingerprint: &str,
        run_id: RunId,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<KeyClaim, StoreError> {
        let (key, fingerprint) = (key.to_string(), fingerprint.to_string());
        self.with(move |c| {
            // One statement: insert, or take over a claim that has expired.
            c.prepare_cached(
                "INSERT INTO request_keys (key, fingerprint, run_id, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
                     run_id = excluded.run_id, expires_at = excluded.expires_at
                 WHERE request_keys.expires_at <= ?5",
            )
            .map_err(unavailable)?
            .execute(params![
                key,
                fingerprint,
                run_id.to_string(),
                expires_at.unix_timestamp(),
                now.unix_timestamp()
            ])
            .map_err(unavailable)?;
            let (held_by, held_fp): (String, String) = c
                .prepare_cached("SELECT run_id, fingerprint FROM request_keys WHERE key = ?1")
                .map_err(unavailable)?
                .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(unavailable)?;
            let held_by = RunId::parse(&held_by).map_err(|e| StoreError::corrupt("request key", e))?;
            Ok(KeyClaim {
                run_id: held_by,
                fresh: held_by == run_id,
                fingerprint: held_fp,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test request's closure, boxed so its answer has a type to name.
    type Insert = Box<dyn FnMut(&Connection, &mut States) -> Result<i64, StoreError> + Send>;
    type Answer = tokio::sync::oneshot::Receiver<(Result<i64, StoreError>, Insert)>;

    /// Requests run, by every test of this module (each test compares before and after
    /// under a lock).
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A request inserting `v` into `t`, then failing (after its write) or panicking if
    /// told to.
    fn insert(v: &'static str, end: &'static str) -> (Job, Answer) {
        let (answer, result) = tokio::sync::oneshot::channel();
        let f: Insert = Box::new(
            move |c: &Connection, _: &mut States| -> Result<i64, StoreError> {
                RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if end == "refuse" {
                    return Err(StoreError::NotFound(
                        RunId::parse("01J00000000000000000000000").unwrap(),
                    ));
                }
                c.execute("INSERT INTO t (v) VALUES (?1)", params![v])
                    .map_err(unavailable)?;
                match end {
                    "fail" => Err(StoreError::NotFound(
                        RunId::parse("01J00000000000000000000000").unwrap(),
                    )),
                    "panic" => panic!("a request panicked"),
                    _ => Ok(c.last_insert_rowid()),
                }
            },
        );
        (
            Box::new(Pending {
                f,
                outcome: None,
                answer,
            }),
            result,
        )
    }

    fn rows(store: &SqliteStore) -> Vec<String> {
        let db = store.shared.conn.lock().unwrap();
        let mut st = db.conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The three requests' answers, and how many of them wrote and were committed.
    fn group_of(
        store: &SqliteStore,
        ends: [&'static str; 3],
    ) -> (Vec<Result<i64, StoreError>>, u64) {
        {
            let db = store.shared.conn.lock().unwrap();
            db.conn
                .execute_batch("CREATE TABLE IF NOT EXISTS t (v TEXT); DELETE FROM t;")
                .unwrap();
        }
        let (jobs, answers): (Vec<Job>, Vec<Answer>) = ["a", "b", "c"]
            .into_iter()
            .zip(ends)
            .map(|(v, end)| insert(v, end))
            .unzip();
        let wrote = commit_group(&mut store.shared.conn.lock().unwrap(), jobs);
        let answers = answers
            .into_iter()
            .map(|mut a| {
                a.try_recv()
                    .map(|(answer, _)| answer)
                    .unwrap_or_else(|_| Err(StoreError::Unavailable("dropped".into())))
            })
            .collect();
        (answers, wrote)
    }

    /// Asserts that SQLite's plan for `sql` (its parameters all NULL) reads `index`.
    fn assert_plan_uses(c: &Connection, sql: &str, index: &str) {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let plan: Vec<String> = st
            .query_map(
                rusqlite::params_from_iter(vec![rusqlite::types::Null; n]),
                |r| r.get::<_, String>(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains(&format!("USING INDEX {index}"))),
            "{sql}: {plan:?}"
        );
    }

    /// A first run of the example brief, parallel.
    fn a_new_run() -> crate::ports::NewRun {
        let brief: serde_json::Value =
            serde_json::from_str(include_str!("../../../../examples/brief.json")).unwrap();
        crate::ports::NewRun::first(
            Brief::from_value(&brief).unwrap(),
            ExecutionMode::Parallel,
            OffsetDateTime::now_utc(),
        )
    }

    /// The built-in copy agent's artifact for `run_id`, not audited.
    fn a_copy_artifact(run_id: RunId, brief: &Brief) -> Artifact {
        Artifact {
            artifact_id: ArtifactId::new(),
            run_id,
            agent: Agent::Copy,
            content: crate::agents::generate(Agent::Copy, brief, run_id).unwrap(),
            tags: Vec::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            audit: None,
            model: None,
        }
    }

    fn runs() -> usize {
        RUNS.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn the_counts_tell_requests_refusals_writes_and_groups() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.counts(), StoreCounts::default());
        let new = a_new_run();
        let run_id = new.run_id;
        store.create_run(new).await.unwrap();
        store.get_state(run_id).await.unwrap();
        // Refused: the run is queued, not generating.
        let refused = store
            .apply(
                run_id,
                vec![Change::run(Status::Generating, Status::Generated)],
                OffsetDateTime::now_utc(),
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict { .. })),
            "{refused:?}"
        );
        // One after another: each request alone in its group.
        assert_eq!(
            store.counts(),
            StoreCounts {
                requests: 3,
                refused: 1,
                writes: 1,
                groups: 3
            }
        );
    }

    #[tokio::test]
    async fn a_batch_and_its_sample_are_one_transaction() {
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        store.create_run(new).await.unwrap();
        let (events, sampled) = store
            .apply_with_sample(
                run_id,
                vec![Change::run(Status::Queued, Status::Generating)],
                OffsetDateTime::now_utc(),
                crate::domain::AgentSample {
                    agent: Agent::Copy,
                    at: OffsetDateTime::now_utc(),
                    duration_ms: 5,
                    throttled: false,
                },
            )
            .await;
        assert_eq!(events.unwrap().len(), 1);
        sampled.unwrap();
        // The run's creation, then both requests in one group.
        assert_eq!(
            store.counts(),
            StoreCounts {
                requests: 3,
                refused: 0,
                writes: 3,
                groups: 2
            }
        );
    }

    #[test]
    fn a_request_refused_before_writing_needs_no_second_pass() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let store = SqliteStore::in_memory().unwrap();
        let before = runs();
        let (answers, wrote) = group_of(&store, ["ok", "refuse", "ok"]);
        assert_eq!(runs() - before, 3, "each request ran once");
        assert_eq!(wrote, 2, "the refused request wrote nothing");
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(
            matches!(answers[1], Err(StoreError::NotFound(_))),
            "{:?}",
            answers[1]
        );
        assert_eq!(rows(&store), ["a", "c"]);
    }

    #[test]
    fn a_request_failing_in_a_group_is_undone_alone_and_the_others_commit_once() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let store = SqliteStore::in_memory().unwrap();
        let before = runs();
        let (answers, wrote) = group_of(&store, ["ok", "fail", "ok"]);
        // a, b (failing after its write), then all three again with savepoints.
        assert_eq!(runs() - before, 5);
        assert_eq!(
            wrote, 2,
            "a and c, counted once; b's undone write is not counted"
        );
        assert!(answers[0].is_ok(), "{:?}", answers[0]);
        assert!(
            matches!(answers[1], Err(StoreError::NotFound(_))),
            "{:?}",
            answers[1]
        );
        assert!(answers[2].is_ok(), "{:?}", answers[2]);
        // "a" ran twice (before and after the failure) and is kept once; "b" is undone.
        assert_eq!(rows(&store), ["a", "c"]);
        // The store goes on: a group where all succeed commits all.
        let (answers, wrote) = group_of(&store, ["ok", "ok", "ok"]);
        assert!(answers.iter().all(Result::is_ok), "{answers:?}");
        assert_eq!(wrote, 3);
        assert_eq!(rows(&store), ["a", "b", "c"]);
    }

    #[test]
    fn a_request_panicking_in_a_group_rolls_the_group_back_and_every_caller_hears_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let store = SqliteStore::in_memory().unwrap();
        let (answers, wrote) = group_of(&store, ["ok", "panic", "ok"]);
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Err(StoreError::Unavailable(_)))),
            "{answers:?}"
        );
        assert_eq!(wrote, 0, "nothing was committed");
        assert!(rows(&store).is_empty());
        // A request failing alone keeps nothing either.
        let store2 = SqliteStore::in_memory().unwrap();
        {
            let db = store2.shared.conn.lock().unwrap();
            db.conn.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        }
        let (job, mut answer) = insert("x", "fail");
        let wrote = commit_group(&mut store2.shared.conn.lock().unwrap(), vec![job]);
        assert_eq!(wrote, 0);
        assert!(matches!(
            answer.try_recv(),
            Ok((Err(StoreError::NotFound(_)), _))
        ));
        assert!(rows(&store2).is_empty());
    }

    #[tokio::test]
    async fn timings_read_from_marks_are_the_timings_of_the_whole_events() {
        use crate::domain::Scope;
        use crate::domain::event::EventType;
        let store = SqliteStore::in_memory().unwrap();
        let run_id = RunId::new();
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let ms = |n: i64| t0 + time::Duration::milliseconds(n);
        let event = |seq: u64, scope: Scope, status: Status, at, detail| Event {
            run_id,
            seq,
            kind: EventType::for_scope(scope),
            scope,
            status,
            at,
            detail,
        };
        let log = vec![
            event(1, Scope::Run, Status::Queued, ms(0), None),
            event(
                2,
                Scope::Copy,
                Status::Generating,
                ms(1),
                Some(serde_json::json!({"attempt": 1})),
            ),
            event(
                3,
                Scope::Copy,
                Status::Generated,
                ms(40),
                Some(serde_json::json!({"artifactId": "x"})),
            ),
            event(4, Scope::Copy, Status::Auditing, ms(41), None),
            // Not an object: read as a whole event.
            event(
                5,
                Scope::Social,
                Status::Completed,
                ms(60),
                Some(serde_json::json!("reused")),
            ),
            event(
                6,
                Scope::Copy,
                Status::Completed,
                ms(75),
                Some(serde_json::json!({"verdict": "pass", "findings": [1, 2]})),
            ),
            event(7, Scope::Run, Status::Completed, ms(80), None),
        ];
        let bodies: Vec<String> = log
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        store
            .with(move |c| {
                for (i, b) in bodies.iter().enumerate() {
                    c.execute(
                        "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3)",
                        params![run_id.to_string(), i as i64 + 1, b],
                    )
                    .map_err(unavailable)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let lean = store
            .with(move |c| Ok(timings_from_marks(t0, &read_marks(c, run_id)?)))
            .await
            .unwrap();
        assert_eq!(lean, crate::domain::run::timings_from_events(t0, &log));
        assert_eq!(lean.time_to_first_artifact_ms, Some(40));
        assert_eq!(lean.audit_latency_ms, Some(34));
        assert_eq!(lean.total_ms, Some(80));
    }

    #[tokio::test]
    async fn samples_are_cut_back_to_the_kept_number_per_agent_as_new_ones_come() {
        let store = SqliteStore::in_memory().unwrap();
        let n = SAMPLES_KEPT + 2 * PRUNE_EVERY + 7;
        for i in 0..n {
            // Two agents, strictly alternating: each one's inserts land on ids of one
            // parity, so a cut made only for the agent whose insert hit the mark would
            // never happen for the other.
            for agent in [Agent::Copy, Agent::Social] {
                store
                    .record_sample(AgentSample {
                        agent,
                        at: OffsetDateTime::UNIX_EPOCH,
                        duration_ms: i as u64,
                        throttled: false,
                    })
                    .await
                    .unwrap();
            }
        }
        for agent in [Agent::Copy, Agent::Social] {
            let agent_name = agent.as_str();
            let kept: i64 = store
                .with(move |c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM agent_samples WHERE agent = ?1",
                        params![agent_name],
                        |r| r.get(0),
                    )
                    .map_err(unavailable)
                })
                .await
                .unwrap();
            assert!(
                (SAMPLES_KEPT..=SAMPLES_KEPT + PRUNE_EVERY).contains(&kept),
                "{agent}: {kept} samples kept"
            );
            let newest = store.recent_samples(agent, 3).await.unwrap();
            assert_eq!(
                newest.iter().map(|s| s.duration_ms).collect::<Vec<_>>(),
                [n as u64 - 1, n as u64 - 2, n as u64 - 3]
            );
        }
    }

    #[tokio::test]
    async fn an_audit_report_kept_inside_the_body_by_an_older_file_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        let brief = Brief::from_value(&serde_json::json!({
            "objective": "Launch", "audience": "Riders", "product": "Aurora", "tone": "bold"
        }))
        .unwrap();
        let run_id = RunId::new();
        let artifact = Artifact {
            audit: Some(crate::domain::AuditReport::from_findings(Vec::new())),
            ..a_copy_artifact(run_id, &brief)
        };
        drop(SqliteStore::open(&path).unwrap());
        {
            // As schema v4 stored an audited artifact: the report inside the body.
            let c = Connection::open(&path).unwrap();
            c.execute(
                "INSERT INTO artifacts (artifact_id, run_id, body) VALUES (?1, ?2, ?3)",
                params![
                    artifact.artifact_id.to_string(),
                    run_id.to_string(),
                    serde_json::to_string(&artifact).unwrap()
                ],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let read = store.get_artifact(artifact.artifact_id).await.unwrap();
        assert_eq!(read, Some(artifact));
    }

    #[test]
    fn the_migrations_are_valid_and_reach_the_latest_version() {
        migrations().validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 10);
    }

    #[test]
    fn writing_a_run_builds_no_temporary_table_and_its_unfinished_list_uses_the_index() {
        let store = SqliteStore::in_memory().unwrap();
        let db = store.shared.conn.lock().unwrap();
        let program = |sql: &str| -> Vec<String> {
            let mut st = db.conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
            let n = st.parameter_count();
            st.query_map(
                rusqlite::params_from_iter(vec![rusqlite::types::Null; n]),
                |r| r.get::<_, String>(1),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        for sql in [SET_RUN_SEQ, SET_RUN_STATUS, INSERT_RUN] {
            let ops = program(sql);
            assert!(!ops.is_empty());
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {ops:?}"
            );
        }
        // What schema v6's index did, for the test's own sake.
        db.conn
            .execute_batch(
                "CREATE INDEX old_unfinished ON runs(status)
                     WHERE status NOT IN ('completed', 'failed', 'cancelled')",
            )
            .unwrap();
        assert!(
            program(SET_RUN_STATUS)
                .iter()
                .any(|op| op == "OpenEphemeral")
        );
        db.conn.execute_batch("DROP INDEX old_unfinished").unwrap();
        assert_plan_uses(&db.conn, UNFINISHED, "runs_unfinished");
    }

    #[tokio::test]
    async fn events_written_together_are_read_back_each_in_its_place() {
        use crate::domain::{EventType, Scope};
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        let first = store.create_run(new).await.unwrap();
        // More than one statement's worth, and a last statement of fewer.
        let more: Vec<Event> = (2..=EVENTS_AT_ONCE as u64 + 3)
            .map(|seq| Event {
                run_id,
                seq,
                kind: EventType::RunStatus,
                scope: Scope::Run,
                status: Status::Generating,
                at: first.at,
                detail: Some(serde_json::json!({ "n": seq })),
            })
            .collect();
        {
            let db = store.shared.conn.lock().unwrap();
            let bodies: Vec<String> = more
                .iter()
                .map(|e| StoredEvent::body_of(e).unwrap())
                .collect();
            let rows: Vec<(u64, &str)> = more
                .iter()
                .map(|e| e.seq)
                .zip(bodies.iter().map(String::as_str))
                .collect();
            insert_events(&db.conn, &run_id.to_string(), &rows).unwrap();
            // A seq already written fails its statement, and nothing of that statement stays.
            let again = [(EVENTS_AT_ONCE as u64 + 4, "{}"), (2, "{}")];
            assert!(insert_events(&db.conn, &run_id.to_string(), &again).is_err());
        }
        let mut all = vec![first];
        all.extend(more);
        assert_eq!(store.events(run_id, 0).await.unwrap(), all);
    }

    #[tokio::test]
    async fn events_are_read_from_bodies_with_or_without_their_ids() {
        use crate::domain::{EventType, Scope};
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        let first = store.create_run(new).await.unwrap();
        // A body as written before schema v6: the whole event, ids included.
        let old = Event {
            run_id,
            seq: 2,
            kind: EventType::RunStatus,
            scope: Scope::Run,
            status: Status::Generating,
            at: OffsetDateTime::now_utc(),
            detail: Some(serde_json::json!({ "reason": "written by an older campaign" })),
        };
        {
            let db = store.shared.conn.lock().unwrap();
            db.conn
                .execute(
                    "INSERT INTO events (run_id, seq, body) VALUES (?1, 2, ?2)",
                    params![run_id.to_string(), serde_json::to_string(&old).unwrap()],
                )
                .unwrap();
            let body: String = db
                .conn
                .query_row("SELECT body FROM events WHERE seq = 1", [], |r| r.get(0))
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["at", "detail", "scope", "status", "type"], "{body}");
        }
        assert_eq!(
            store.events(run_id, 0).await.unwrap(),
            vec![first, old.clone()]
        );
        assert_eq!(store.events(run_id, 1).await.unwrap(), vec![old]);
    }

    #[test]
    fn a_change_writes_the_body_of_the_event_it_makes() {
        let at = OffsetDateTime::now_utc();
        let run_id = RunId::new();
        for ch in [
            Change::run(Status::Queued, Status::Generating),
            Change::new(Agent::Copy, Status::Generating, Status::Generated)
                .with_detail(serde_json::json!({ "artifactId": ArtifactId::new() })),
            Change::new(Agent::Visual, Status::Generating, Status::Failed)
                .with_detail(serde_json::json!({ "error": { "code": "x", "message": "\"q\"" } })),
        ] {
            let event = Event::of_change(run_id, 7, &ch, at);
            assert_eq!(
                StoredEvent::body_of_change(&ch, at).unwrap(),
                StoredEvent::body_of(&event).unwrap()
            );
            let back = StoredEvent::parse(&StoredEvent::body_of_change(&ch, at).unwrap())
                .unwrap()
                .into_event(run_id, 7);
            assert_eq!(back, event);
        }
    }

    #[tokio::test]
    async fn a_version_7_file_keeps_its_events_in_order_when_the_log_moves_to_write_order() {
        use crate::domain::{EventType, Scope};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v7.db");
        let run_id = RunId::new();
        let event = |seq: u64, status: Status| Event {
            run_id,
            seq,
            kind: EventType::RunStatus,
            scope: Scope::Run,
            status,
            at: OffsetDateTime::UNIX_EPOCH + Duration::from_secs(seq),
            detail: None,
        };
        let events = [
            event(1, Status::Queued),
            event(2, Status::Generating),
            event(3, Status::Failed),
        ];
        {
            let mut c = Connection::open(&path).unwrap();
            migrations().to_version(&mut c, 7).unwrap();
            c.execute(
                "INSERT INTO runs (run_id, iteration, status, execution_mode, brief, created_at, updated_at, seq)
                 VALUES (?1, 1, 'failed', 'parallel', '{}', 0, 0, 3)",
                [run_id.to_string()],
            )
            .unwrap();
            // Written out of order: the old table's key put them in order, the new one's
            // index must.
            for e in [&events[2], &events[0], &events[1]] {
                c.execute(
                    "INSERT INTO events (run_id, seq, body) VALUES (?1, ?2, ?3)",
                    params![
                        run_id.to_string(),
                        e.seq as i64,
                        StoredEvent::body_of(e).unwrap()
                    ],
                )
                .unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.events(run_id, 0).await.unwrap(), events);
        assert_eq!(store.events(run_id, 1).await.unwrap(), events[1..]);
        // A seq written twice is refused, as the old key refused it.
        let db = store.shared.conn.lock().unwrap();
        assert!(insert_event(&db.conn, &run_id.to_string(), 2, "{}").is_err());
        // Reading a run's events goes through the index, not over the whole log.
        assert_plan_uses(
            &db.conn,
            "SELECT seq, body FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            "events_of_run",
        );
    }

    #[tokio::test]
    async fn a_version_8_files_agent_rows_move_into_their_runs_row_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v8.db");
        let run_id = RunId::new();
        let (copy, visual) = (ArtifactId::new(), ArtifactId::new());
        {
            let mut c = Connection::open(&path).unwrap();
            migrations().to_version(&mut c, 8).unwrap();
            c.execute(
                "INSERT INTO runs (run_id, iteration, status, execution_mode, brief, created_at, updated_at, seq)
                 VALUES (?1, 1, 'generating', 'parallel', ?2, 0, 0, 1)",
                params![run_id.to_string(), json(&a_new_run().brief).unwrap()],
            )
            .unwrap();
            let mut agent = c
                .prepare(
                    "INSERT INTO agents (run_id, agent, status, artifact_id, attempts, error, reused, verdict)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .unwrap();
            let error = r#"{"code":"AgentFailed","message":"the model said \"no\""}"#;
            for row in [
                params![
                    run_id.to_string(),
                    "copy",
                    "completed",
                    copy.to_string(),
                    2,
                    None::<String>,
                    false,
                    "pass"
                ],
                params![
                    run_id.to_string(),
                    "social",
                    "generating",
                    None::<String>,
                    3,
                    error,
                    false,
                    None::<String>
                ],
                params![
                    run_id.to_string(),
                    "visual",
                    "completed",
                    visual.to_string(),
                    0,
                    None::<String>,
                    true,
                    None::<String>
                ],
            ] {
                agent.execute(row).unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        let agents = store.get_state(run_id).await.unwrap().agents;
        let expected: std::collections::BTreeMap<Agent, AgentState> = [
            (
                Agent::Copy,
                AgentState {
                    status: Status::Completed,
                    artifact_id: Some(copy),
                    attempts: 2,
                    verdict: Some(crate::domain::Verdict::Pass),
                    ..AgentState::queued()
                },
            ),
            (
                Agent::Social,
                AgentState {
                    status: Status::Generating,
                    attempts: 3,
                    error: Some(crate::domain::AgentError {
                        code: "AgentFailed".into(),
                        message: "the model said \"no\"".into(),
                    }),
                    ..AgentState::queued()
                },
            ),
            (
                Agent::Visual,
                AgentState {
                    status: Status::Completed,
                    artifact_id: Some(visual),
                    reused: true,
                    ..AgentState::queued()
                },
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(agents, expected);
        // And the moved states go on being written: a retried attempt is counted.
        assert_eq!(store.bump_attempts(run_id, Agent::Social).await.unwrap(), 4);
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.get_state(run_id).await.unwrap().agents[&Agent::Social].attempts,
            4
        );
    }

    #[tokio::test]
    async fn a_version_9_files_audit_reports_move_to_their_table_and_a_report_needs_its_artifact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v9.db");
        let brief = a_new_run().brief;
        let run_id = RunId::new();
        let report = crate::domain::AuditReport::from_findings(Vec::new());
        let audited = Artifact {
            audit: Some(report.clone()),
            ..a_copy_artifact(run_id, &brief)
        };
        let unaudited = a_copy_artifact(run_id, &brief);
        let missing = ArtifactId::new();
        {
            let mut c = Connection::open(&path).unwrap();
            migrations().to_version(&mut c, 9).unwrap();
            for a in [&audited, &unaudited] {
                let body = Artifact {
                    audit: None,
                    ..a.clone()
                };
                c.execute(
                    "INSERT INTO artifacts (artifact_id, run_id, body, audit) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        a.artifact_id.to_string(),
                        run_id.to_string(),
                        json(&body).unwrap(),
                        a.audit.as_ref().map(|r| json(r).unwrap())
                    ],
                )
                .unwrap();
            }
            // A run whose copy agent, auditing, names an artifact the file does not have.
            let agents: std::collections::BTreeMap<Agent, AgentState> = Agent::ALL
                .into_iter()
                .map(|a| {
                    let state = AgentState {
                        status: Status::Auditing,
                        artifact_id: (a == Agent::Copy).then_some(missing),
                        ..AgentState::queued()
                    };
                    (a, state)
                })
                .collect();
            c.execute(
                "INSERT INTO runs (run_id, iteration, status, execution_mode, brief, created_at, updated_at, seq, agents)
                 VALUES (?1, 1, 'auditing', 'parallel', ?2, 0, 0, 1, ?3)",
                params![run_id.to_string(), json(&brief).unwrap(), json(&agents).unwrap()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        for a in [&audited, &unaudited] {
            assert_eq!(
                store.get_artifact(a.artifact_id).await.unwrap().as_ref(),
                Some(a)
            );
        }
        {
            let db = store.shared.conn.lock().unwrap();
            let reports: i64 = db
                .conn
                .query_row("SELECT count(*) FROM audits", [], |r| r.get(0))
                .unwrap();
            assert_eq!(reports, 1);
            let columns: Vec<String> = db
                .conn
                .prepare("SELECT name FROM pragma_table_info('artifacts')")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(columns, ["artifact_id", "run_id", "body"]);
            // Both looked up by key, neither read through.
            let plan: Vec<String> = db
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {READ_ARTIFACT}"))
                .unwrap()
                .query_map([rusqlite::types::Null], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(plan.len(), 2, "{plan:?}");
            assert!(
                plan[0].starts_with("SEARCH artifacts USING INDEX"),
                "{plan:?}"
            );
            assert!(
                plan[1].starts_with("SEARCH audits USING PRIMARY KEY"),
                "{plan:?}"
            );
        }
        let refused = store
            .apply(
                run_id,
                vec![
                    Change::new(Agent::Copy, Status::Auditing, Status::Completed)
                        .with_audit(report),
                ],
                OffsetDateTime::now_utc(),
            )
            .await;
        assert!(
            matches!(&refused, Err(StoreError::Corrupt { what, .. }) if what == "audit"),
            "{refused:?}"
        );
        assert_eq!(
            store.get_state(run_id).await.unwrap().agents[&Agent::Copy].status,
            Status::Auditing,
            "nothing of it kept"
        );
    }

    #[test]
    fn a_file_from_before_versioning_is_adopted_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // What an earlier `campaign` left: the v1 tables, user_version 0.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(SCHEMA).unwrap();
            c.execute(
                "INSERT INTO runs (run_id, iteration, status, execution_mode, brief, created_at, updated_at, seq)
                 VALUES ('01JD5Z8X7Q2M4N6P8R0S2T4V6W', 1, 'completed', 'parallel', '{}', 0, 0, 1)",
                [],
            )
            .unwrap();
        }
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 10);
        let runs: i64 = c
            .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(runs, 1, "data kept");
        for table in [
            "request_keys",
            "agent_samples",
            "brands",
            "connections",
            "subscriptions",
        ] {
            c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        }
        c.query_row("SELECT count(mode_decision) FROM runs", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_steady_writes_the_wal_starts_again_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let store = SqliteStore::open_resetting_wal_at(&path, 64).unwrap();
        // Commits without a pause, for longer than many checkpoints.
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            store.create_run(a_new_run()).await.unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("wal.db-wal"))
            .unwrap()
            .len();
        let c = Connection::open(&path).unwrap();
        let page: u64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let pages: u64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        // Each commit writes several pages again (a table's last leaf, its indexes): a WAL
        // never started again holds every one of them, ~25 times the database here; one
        // started again holds what a checkpoint interval committed, ~2 times (the margin
        // is for a checkpointer starved by a busy machine).
        let db = pages * page;
        assert!(wal < 8 * db, "WAL {wal} bytes, database {db} bytes");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_complete_checkpoint_the_wal_starts_again_off_the_callers_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restart.db");
        let store = SqliteStore::open(&path).unwrap();
        for _ in 0..20 {
            store.create_run(a_new_run()).await.unwrap();
        }
        let c = Connection::open(&path).unwrap();
        // (frames in the WAL, frames of them copied to the database file)
        let wal = || {
            c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })
            .unwrap()
        };
        // The WAL header's checkpoint sequence: one more at each start from the beginning.
        let restarts = || {
            let h = std::fs::read(dir.path().join("restart.db-wal")).unwrap();
            u32::from_be_bytes(h[12..16].try_into().unwrap())
        };
        // With no request coming, SQLite would start the WAL again only at the next
        // request's write (and sync the new header in that request's time), and until then
        // the WAL would hold the frames of the last commit at least (a run's creation
        // writes several pages); the store starts it again itself, with one frame.
        let started = std::time::Instant::now();
        while wal() != (1, 1) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the WAL was not started again: {:?}",
                wal()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The id the open wrote and the restart wrote again: the file's content is as it was.
        let id: i32 = c
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, APPLICATION_ID);
        // An idle store stays idle: that frame is not written again and again.
        let restarted = restarts();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!((wal(), restarts()), ((1, 1), restarted));
        drop(store);
    }

    #[tokio::test]
    async fn a_kept_state_follows_what_another_connection_commits_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states.db");
        let store = SqliteStore::open(&path).unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        store.create_run(new).await.unwrap();
        assert_eq!(
            store.get_state(run_id).await.unwrap().status,
            Status::Queued
        );
        // Another process moves the run; this store's next read must see it.
        let other = Connection::open(&path).unwrap();
        other
            .execute(
                "UPDATE runs SET status = 'cancelled' WHERE run_id = ?1",
                params![run_id.to_string()],
            )
            .unwrap();
        assert_eq!(
            store.get_state(run_id).await.unwrap().status,
            Status::Cancelled
        );
        // And a transition is checked against the file, not against what was kept.
        let r = store
            .apply(
                run_id,
                vec![Change::run(Status::Queued, Status::Generating)],
                OffsetDateTime::now_utc(),
            )
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::Conflict {
                    run_terminal: true,
                    ..
                })
            ),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_group_run_again_after_a_failure_forgets_the_states_its_first_pass_wrote() {
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        store.create_run(new).await.unwrap();
        store.get_state(run_id).await.unwrap();
        {
            let db = store.shared.conn.lock().unwrap();
            db.conn
                .execute_batch("CREATE TABLE IF NOT EXISTS t (v TEXT)")
                .unwrap();
        }
        // The first request moves the run (and its kept state); the second writes, then
        // fails: the transaction is rolled back and both run again, each in a savepoint.
        let (answer, mut moved) = tokio::sync::oneshot::channel();
        let start: Job = Box::new(Pending {
            f: move |c: &Connection, states: &mut States| {
                let at = OffsetDateTime::now_utc();
                let mut change = Change::run(Status::Queued, Status::Generating);
                let written = Written::of(&mut change, at)?;
                apply_tx(c, states, run_id, &[change], &[written], at)
            },
            outcome: None,
            answer,
        });
        let (answer, _failed) = tokio::sync::oneshot::channel();
        let fails: Job = Box::new(Pending {
            f: move |c: &Connection, _: &mut States| {
                c.execute("INSERT INTO t (v) VALUES ('x')", [])
                    .map_err(unavailable)?;
                Err::<(), _>(StoreError::NotFound(run_id))
            },
            outcome: None,
            answer,
        });
        commit_group(&mut store.shared.conn.lock().unwrap(), vec![start, fails]);
        // Run again, the move found the run queued (as the file had it), not generating
        // (as its own first pass had kept it).
        let events = moved.try_recv().unwrap().0.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].seq, 2);
        let state = store.get_state(run_id).await.unwrap();
        assert_eq!(state.status, Status::Generating);
        assert_eq!(store.events(run_id, 0).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_closed_run_is_kept_until_its_close_is_read_and_not_when_read_again() {
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        store.create_run(new).await.unwrap();
        let kept = |store: &SqliteStore| {
            store
                .shared
                .conn
                .lock()
                .unwrap()
                .states
                .runs
                .contains_key(&run_id)
        };
        assert!(kept(&store), "a created run is kept");
        store
            .apply(
                run_id,
                vec![Change::run(Status::Queued, Status::Cancelled)],
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert!(kept(&store), "kept for the read of its close");
        assert_eq!(
            store.get_state(run_id).await.unwrap().status,
            Status::Cancelled
        );
        let closed = store.closed_run(run_id).await.unwrap();
        assert_eq!(closed.status, Status::Cancelled);
        assert!(!kept(&store), "the read of its close drops it");
        assert_eq!(
            store.get_state(run_id).await.unwrap().status,
            Status::Cancelled
        );
        store.closed_run(run_id).await.unwrap();
        assert!(!kept(&store), "reading it again does not keep it");
    }

    #[tokio::test]
    async fn a_runs_artifacts_and_marks_are_kept_with_it_and_leave_with_it() {
        let store = SqliteStore::in_memory().unwrap();
        let new = a_new_run();
        let run_id = new.run_id;
        let brief = new.brief.clone();
        store.create_run(new).await.unwrap();
        let now = OffsetDateTime::now_utc;
        let artifact = Artifact {
            tags: vec!["launch".into()],
            created_at: now(),
            ..a_copy_artifact(run_id, &brief)
        };
        let id = artifact.artifact_id;
        let steps = [
            vec![
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Queued, Status::Generating),
            ],
            vec![
                Change::new(Agent::Copy, Status::Generating, Status::Generated)
                    .with_artifact(artifact.clone()),
            ],
            vec![Change::new(
                Agent::Copy,
                Status::Generated,
                Status::Auditing,
            )],
        ];
        for changes in steps {
            store.apply(run_id, changes, now()).await.unwrap();
        }
        let kept = |store: &SqliteStore| {
            let db = store.shared.conn.lock().unwrap();
            let marks = db.states.runs.peek(&run_id).map(|k| k.marks.len());
            (db.states.artifacts.get(&id).map(|a| (**a).clone()), marks)
        };
        assert_eq!(kept(&store), (Some(artifact.clone()), Some(5)));
        // Answered as kept (in debug builds also compared with the file's).
        assert_eq!(
            store.get_artifact(id).await.unwrap(),
            Some(artifact.clone())
        );
        let report = crate::domain::AuditReport::from_findings(Vec::new());
        store
            .apply(
                run_id,
                vec![
                    Change::new(Agent::Copy, Status::Auditing, Status::Completed)
                        .with_audit(report.clone()),
                ],
                now(),
            )
            .await
            .unwrap();
        let audited = Artifact {
            audit: Some(report),
            ..artifact
        };
        assert_eq!(
            kept(&store).0.as_ref(),
            Some(&audited),
            "the report follows"
        );
        assert_eq!(
            store.get_artifact(id).await.unwrap().as_ref(),
            Some(&audited)
        );
        store
            .apply(
                run_id,
                vec![Change::run(Status::Generating, Status::Cancelled)],
                now(),
            )
            .await
            .unwrap();
        let closed = store.closed_run(run_id).await.unwrap();
        assert_eq!(kept(&store), (None, None), "both leave with the run");
        // The timings of the kept marks are those the file's log gives.
        let from_file = {
            let db = store.shared.conn.lock().unwrap();
            timings_from_marks(closed.created_at, &read_marks(&db.conn, run_id).unwrap())
        };
        assert_eq!(closed.timings, from_file);
        assert!(closed.timings.total_ms.is_some());
        assert_eq!(
            store.get_artifact(id).await.unwrap(),
            Some(audited),
            "read from the file"
        );
    }

    #[test]
    fn a_run_let_go_to_make_room_takes_its_artifacts_along() {
        let mut states = States::new();
        let run = |run_id| {
            let mut new = a_new_run();
            new.run_id = run_id;
            new.state(new.brief.clone())
        };
        let kept = |run_id| Kept {
            run: Arc::new(run(run_id)),
            seq: 1,
            marks: Vec::new(),
            artifacts: Vec::new(),
        };
        let first = RunId::new();
        states.keep(first, kept(first));
        let id = ArtifactId::new();
        states.runs.get_mut(&first).unwrap().artifacts.push(id);
        states.artifacts.insert(
            id,
            Arc::new(Artifact {
                artifact_id: id,
                ..a_copy_artifact(first, &a_new_run().brief)
            }),
        );
        for _ in 1..STATES_KEPT {
            let r = RunId::new();
            states.keep(r, kept(r));
        }
        assert!(states.runs.contains_key(&first) && states.artifacts.contains_key(&id));
        let r = RunId::new();
        states.keep(r, kept(r));
        assert!(
            !states.runs.contains_key(&first),
            "the least recently used goes"
        );
        assert!(states.artifacts.is_empty(), "with its artifacts");
        assert_eq!(states.runs.len(), STATES_KEPT);
    }
}
