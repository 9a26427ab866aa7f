//! The DynamoDB store: one table, single-table design.
//!
//! | item | pk | sk | notes |
//! |---|---|---|---|
//! | run | `RUN#<runId>` | `RUN` | status, agents map, seq, version, envelope; `gsi1` lists runs newest first; `gsi2` (sparse) lists unfinished runs |
//! | event | `RUN#<runId>` | `EVT#<seq, 10 digits>` | one per transition |
//! | artifact | `ART#<artifactId>` | `ART` | content, tags, audit |
//! | request key | `REQ#<key>` | `REQ` | run id, fingerprint; expires by `ttl` |
//! | agent sample | `SAMPLES#<agent>` | `<time, 20 digits>#<random>` | duration, throttled; expires by `ttl` (for `executionMode: "auto"`) |
//! | brand kit | `BRANDS` | `<brandId>` | the kit as JSON, its `version` (one partition: a library is small, listing is one query) |
//!
//! Every write is one `TransactWriteItems`: the run item is put back with the condition
//! that its `version` is the one read, together with the batch's events and artifacts — so a
//! transition, its artifact and its event are written together or not at all, and a
//! concurrent writer makes the transaction fail, after which the batch is re-checked against
//! the fresh state (and refused with `Conflict` if it no longer applies).
//!
//! Concurrency is resolved here, never handed to the caller as a retryable error: a
//! transaction cancelled because another transaction held one of its items
//! (`TransactionConflict`) or because a version moved (`ConditionalCheckFailed`) is re-read
//! and re-applied after a jittered backoff. Otherwise three agents finishing at once would
//! make Step Functions re-run an agent that had in fact succeeded. Each attempt carries its
//! own `ClientRequestToken`, so the SDK's own retry of a request whose answer was lost is
//! idempotent.
//!
//! Listing: `gsi1` is sharded over `RUNS#0`..`RUNS#7` (by the run id's random bits), so run
//! creation is not bound to one partition's write limit; a page queries every shard for
//! ids below the cursor and merges them newest first. The index carries only the summary
//! attributes ([`RUN_SUMMARY_ATTRIBUTES`]), so a page is eight queries, whatever its size.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::sdk_unavailable;
use crate::domain::run::timings_from_events;
use crate::domain::transition::{self, Change, Snapshot};
use crate::domain::{
    Agent, AgentSample, AgentState, Artifact, ArtifactId, AuditReport, BrandKit, Brief, Envelope,
    Event, ExecutionMode, ModeDecision, Run, RunId, Status,
};
use crate::domain::{Outcome, RunSummary};
use crate::ports::{
    BrandError, BrandLibrary, KeyClaim, NewRun, RequestKeys, RunPage, RunStore, StoreError,
};

/// How long an agent sample is kept (it only steers `auto` runs).
const SAMPLE_TTL: time::Duration = time::Duration::days(7);
const BRANDS_PARTITION: &str = "BRANDS";

pub const GSI_RUNS: &str = "gsi1";
pub const GSI_UNFINISHED: &str = "gsi2";
const UNFINISHED_PARTITION: &str = "UNFINISHED";
/// Shards of the listing index.
pub const RUN_SHARDS: u128 = 8;
/// The run item's attributes the listing index projects (the template's
/// `NonKeyAttributes` of `gsi1` must be exactly these).
pub const RUN_SUMMARY_ATTRIBUTES: &[&str] = &[
    "run_id",
    "parent_run_id",
    "iteration",
    "status",
    "execution_mode",
    "created_at",
    "outcome",
    "product",
];
/// Optimistic-concurrency retries of one batch before giving up as `Unavailable`.
const MAX_RACES: u32 = 16;

fn runs_shard(id: RunId) -> String {
    format!("RUNS#{}", id.ulid().random() % RUN_SHARDS)
}

fn run_pk(id: RunId) -> String {
    format!("RUN#{id}")
}
fn event_sk(seq: u64) -> String {
    format!("EVT#{seq:010}")
}
fn artifact_pk(id: ArtifactId) -> String {
    format!("ART#{id}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// The run item.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    /// Present only while the run is unfinished (sparse index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_run_id: Option<RunId>,
    iteration: u32,
    status: Status,
    execution_mode: ExecutionMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode_decision: Option<ModeDecision>,
    brief: Brief,
    #[serde(with = "crate::domain::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "crate::domain::rfc3339")]
    updated_at: OffsetDateTime,
    seq: u64,
    version: u64,
    agents: BTreeMap<Agent, AgentState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    envelope: Option<Envelope>,
    /// Copies for the listing index (which cannot project nested attributes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(default)]
    product: String,
}

/// What the listing index holds of a run (see [`RUN_SUMMARY_ATTRIBUTES`]).
#[derive(Debug, Deserialize)]
struct RunSummaryItem {
    run_id: RunId,
    #[serde(default)]
    parent_run_id: Option<RunId>,
    iteration: u32,
    status: Status,
    execution_mode: ExecutionMode,
    #[serde(with = "crate::domain::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(default)]
    product: String,
}

impl From<RunSummaryItem> for RunSummary {
    fn from(i: RunSummaryItem) -> Self {
        RunSummary {
            run_id: i.run_id,
            parent_run_id: i.parent_run_id,
            iteration: i.iteration,
            status: i.status,
            execution_mode: i.execution_mode,
            created_at: i.created_at,
            outcome: i.outcome,
            product: i.product,
        }
    }
}

impl RunItem {
    fn set_status(&mut self, status: Status) {
        self.status = status;
        if status.is_terminal() {
            self.gsi2pk = None;
            self.gsi2sk = None;
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
struct ArtifactItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    artifact: Artifact,
}

/// DynamoDB-backed [`RunStore`] (and, in `websocket.rs`, the WebSocket subscriptions).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    pub(super) client: Client,
    pub(super) table: String,
    /// Writers of one run inside this process queue up instead of racing: fewer
    /// transaction retries (across processes the version condition still decides).
    stripes: std::sync::Arc<[tokio::sync::Mutex<()>; 64]>,
}

fn to_item<T: Serialize>(v: &T) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(v).map_err(|e| StoreError::corrupt("serialize item", e))
}

fn from_item<T: for<'de> Deserialize<'de>>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::corrupt("read item", e))
}

/// How a `TransactWriteItems` ended, from the typed error and its cancellation reasons.
#[derive(Debug)]
enum Commit {
    Committed,
    /// A condition did not hold (a version moved, an item exists): re-read and re-check.
    ConditionFailed,
    /// Another transaction held an item, or the table throttled: the same batch may
    /// succeed after a pause, re-read first.
    Contended,
    /// The answer was lost on the way (timeout, connection): the same request, with the
    /// same token, may be sent again.
    Unanswered(StoreError),
}

/// The cancellation reason codes DynamoDB documents for `TransactionCanceledException`.
const REASON_CONDITION: &str = "ConditionalCheckFailed";
const REASON_CONFLICT: &str = "TransactionConflict";
const REASON_THROTTLED: [&str; 2] = ["ThrottlingError", "ProvisionedThroughputExceeded"];

fn classify(e: SdkError<TransactWriteItemsError, HttpResponse>) -> Result<Commit, StoreError> {
    match &e {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                let codes: Vec<&str> = c
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code())
                    .collect();
                if codes.contains(&REASON_CONDITION) {
                    Ok(Commit::ConditionFailed)
                } else if codes
                    .iter()
                    .any(|c| *c == REASON_CONFLICT || REASON_THROTTLED.contains(c))
                {
                    Ok(Commit::Contended)
                } else {
                    Err(sdk_unavailable(e))
                }
            }
            // The same token is still being applied by an earlier attempt.
            TransactWriteItemsError::TransactionInProgressException(_)
            | TransactWriteItemsError::ThrottlingException(_)
            | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
            | TransactWriteItemsError::RequestLimitExceeded(_) => Ok(Commit::Contended),
            _ => Err(sdk_unavailable(e)),
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Ok(Commit::Unanswered(sdk_unavailable(e)))
        }
        _ => Err(sdk_unavailable(e)),
    }
}

/// Jittered exponential backoff before attempt `n` (1-based) of a contended write: up to
/// 10 ms, 20 ms, … capped at 640 ms, full jitter so racing writers spread out.
fn backoff(n: u32) -> std::time::Duration {
    let cap_ms = 10u64 << n.min(6);
    std::time::Duration::from_millis(fastrand::u64(1..=cap_ms))
}

impl DynamoStore {
    /// Up to `want` run summaries of one `gsi1` shard below `before`, newest first; with a
    /// status, a filter on the projected `status`, reading on until `want` match or the
    /// shard is exhausted (a filter applies after DynamoDB's `Limit`).
    async fn shard_page(
        &self,
        shard: u128,
        before: Option<RunId>,
        status: Option<Status>,
        want: usize,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI_RUNS)
                .expression_attribute_values(":p", s(format!("RUNS#{shard}")))
                .scan_index_forward(false)
                .limit((want - out.len()).max(if status.is_some() { 50 } else { 1 }) as i32)
                .set_exclusive_start_key(start.take());
            q = match before {
                Some(id) => q
                    .key_condition_expression("gsi1pk = :p AND gsi1sk < :c")
                    .expression_attribute_values(":c", s(id.to_string())),
                None => q.key_condition_expression("gsi1pk = :p"),
            };
            if let Some(st) = status {
                q = q
                    .filter_expression("#st = :st")
                    .expression_attribute_names("#st", "status")
                    .expression_attribute_values(":st", s(st.as_str().to_string()));
            }
            let page = q.send().await.map_err(sdk_unavailable)?;
            for item in page.items.unwrap_or_default() {
                if out.len() < want {
                    out.push(from_item::<RunSummaryItem>(item)?.into());
                }
            }
            match page.last_evaluated_key {
                Some(key) if out.len() < want => start = Some(key),
                _ => return Ok(out),
            }
        }
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            stripes: std::sync::Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn stripe(&self, run_id: RunId) -> &tokio::sync::Mutex<()> {
        &self.stripes[(run_id.ulid().random() % 64) as usize]
    }

    async fn load(&self, run_id: RunId) -> Result<RunItem, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(run_pk(run_id)))
            .key("sk", s("RUN"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_unavailable)?;
        from_item(out.item.ok_or(StoreError::NotFound(run_id))?)
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The run item written back only if nobody wrote it since it was read.
    fn put_run(&self, item: &RunItem, read_version: u64) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(read_version.to_string()))
            .build()
            .map_err(unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn event_put(&self, e: &Event) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(&EventItem {
            pk: run_pk(e.run_id),
            sk: event_sk(e.seq),
            event: e.clone(),
        })?;
        self.put(item, "attribute_not_exists(pk)")
    }

    async fn read_events(&self, run_id: RunId, after: u64) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(run_pk(run_id)))
                .expression_attribute_values(":from", s(event_sk(after + 1)))
                .expression_attribute_values(":to", s(event_sk(u64::from(u32::MAX) * 2)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_unavailable)?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item::<EventItem>(item)?.event);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(out),
            }
        }
    }

    async fn artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(artifact_pk(id)))
            .key("sk", s("ART"))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_unavailable)?;
        out.item
            .map(|i| from_item::<ArtifactItem>(i).map(|a| a.artifact))
            .transpose()
    }

    /// `full`: with artifacts and timings (what clients see); without, what flow steps need.
    async fn assemble(&self, item: RunItem, full: bool) -> Result<Run, StoreError> {
        let mut artifacts = Vec::new();
        for st in item.agents.values().filter(|_| full) {
            if let Some(id) = st.artifact_id {
                artifacts.push(self.artifact(id).await?.ok_or_else(|| {
                    StoreError::corrupt("artifact", format!("{id} is referenced but missing"))
                })?);
            }
        }
        let timings = if full {
            timings_from_events(item.created_at, &self.read_events(item.run_id, 0).await?)
        } else {
            Default::default()
        };
        Ok(Run {
            run_id: item.run_id,
            parent_run_id: item.parent_run_id,
            iteration: item.iteration,
            status: item.status,
            execution_mode: item.execution_mode,
            mode_decision: item.mode_decision,
            brief: item.brief,
            created_at: item.created_at,
            updated_at: item.updated_at,
            timings,
            agents: item.agents,
            artifacts,
            envelope: item.envelope,
        })
    }

    /// Writes `items` in one transaction: `Committed`, `ConditionFailed` or `Contended`.
    /// An unanswered request is re-sent with the same token, which DynamoDB answers
    /// idempotently (a transaction that did commit is not applied twice).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Commit, StoreError> {
        let token = ulid::Ulid::new().to_string();
        let mut resent = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let commit = match result {
                Ok(_) => Commit::Committed,
                Err(e) => classify(e)?,
            };
            match commit {
                Commit::Unanswered(e) if resent < 3 => {
                    resent += 1;
                    tracing::warn!(error = %crate::errors::Chain(&e), resent, "transaction unanswered; sending it again");
                    tokio::time::sleep(backoff(resent)).await;
                }
                Commit::Unanswered(e) => return Err(e),
                done => return Ok(done),
            }
        }
    }

    /// Writes the batch `build` makes from a fresh read, until it commits: a version that
    /// moved or a contended item means re-reading (after a jittered pause) and building the
    /// batch again, where `build` re-checks it against the new state.
    async fn write_run<T>(
        &self,
        run_id: RunId,
        mut build: impl FnMut(RunItem) -> Result<(Vec<TransactWriteItem>, T), StoreError>,
    ) -> Result<T, StoreError> {
        let _queued = self.stripe(run_id).lock().await;
        for race in 0..MAX_RACES {
            let item = self.load(run_id).await?;
            let (writes, out) = build(item)?;
            // Nothing to write (a batch whose every change was already done): the read
            // was the answer.
            if writes.is_empty() {
                return Ok(out);
            }
            match self.transact(writes).await? {
                Commit::Committed => return Ok(out),
                other => {
                    tracing::debug!(run_id = %run_id, race, outcome = ?other, "write raced; re-reading");
                    tokio::time::sleep(backoff(race + 1)).await;
                }
            }
        }
        Err(StoreError::Unavailable(
            format!("run {run_id} kept changing under concurrent writers").into(),
        ))
    }
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn create_run(&self, new: NewRun) -> Result<Event, StoreError> {
        let event = new.first_event();
        let agents = new.agents();
        let product = new.brief.product.clone();
        let item = RunItem {
            pk: run_pk(new.run_id),
            sk: "RUN".into(),
            gsi1pk: runs_shard(new.run_id),
            gsi1sk: new.run_id.to_string(),
            gsi2pk: Some(UNFINISHED_PARTITION.into()),
            gsi2sk: Some(new.run_id.to_string()),
            run_id: new.run_id,
            parent_run_id: new.parent_run_id,
            iteration: new.iteration,
            status: Status::Queued,
            execution_mode: new.execution_mode,
            mode_decision: new.mode_decision,
            brief: new.brief,
            created_at: new.created_at,
            updated_at: new.created_at,
            seq: 1,
            version: 1,
            agents,
            envelope: None,
            outcome: None,
            product,
        };
        let items = vec![
            self.put(to_item(&item)?, "attribute_not_exists(pk)")?,
            self.event_put(&event)?,
        ];
        for race in 0..MAX_RACES {
            match self.transact(items.clone()).await? {
                Commit::Committed => return Ok(event),
                Commit::ConditionFailed => return Err(StoreError::AlreadyExists(new.run_id)),
                _ => tokio::time::sleep(backoff(race + 1)).await,
            }
        }
        Err(StoreError::Unavailable(
            format!(
                "run {} could not be created: its items stayed contended",
                new.run_id
            )
            .into(),
        ))
    }

    async fn get_run(&self, run_id: RunId) -> Result<Run, StoreError> {
        let item = self.load(run_id).await?;
        self.assemble(item, true).await
    }

    async fn get_state(&self, run_id: RunId) -> Result<Run, StoreError> {
        let item = self.load(run_id).await?;
        self.assemble(item, false).await
    }

    async fn list_runs(
        &self,
        limit: usize,
        cursor: Option<&str>,
        status: Option<Status>,
    ) -> Result<RunPage, StoreError> {
        let limit = limit.clamp(1, 100);
        let before = match cursor {
            Some(c) => Some(RunId::parse(c).map_err(|_| StoreError::BadCursor(c.to_string()))?),
            None => None,
        };
        // Each shard's newest `limit + 1` (matching runs) below the cursor: their merge
        // holds the page and tells whether anything older is left.
        let queries =
            (0..RUN_SHARDS).map(|shard| self.shard_page(shard, before, status, limit + 1));
        let mut runs: Vec<RunSummary> = Vec::new();
        for page in futures::future::join_all(queries).await {
            runs.extend(page?);
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.run_id));
        let more = runs.len() > limit;
        runs.truncate(limit);
        let next_cursor = if more {
            runs.last().map(|r| r.run_id.to_string())
        } else {
            None
        };
        Ok(RunPage { runs, next_cursor })
    }

    async fn apply(
        &self,
        run_id: RunId,
        changes: Vec<Change>,
        at: OffsetDateTime,
    ) -> Result<Vec<Event>, StoreError> {
        self.write_run(run_id, |mut item| {
            let snap = Snapshot {
                run: item.status,
                agents: item.agents.iter().map(|(a, s)| (*a, s.status)).collect(),
            };
            let checked =
                transition::check(snap, &changes).map_err(|r| StoreError::refused(run_id, r))?;
            if checked.effective.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            let read_version = item.version;
            // A transaction may touch an item only once: an artifact created and audited in
            // the same batch is put once, with its report; other reports become updates.
            let mut new_artifacts: Vec<Artifact> = Vec::new();
            let mut audits: Vec<(ArtifactId, AuditReport)> = Vec::new();
            let mut events = Vec::with_capacity(checked.effective.len());
            for ch in checked.effective {
                match ch.scope.agent() {
                    None => {
                        item.set_status(ch.to);
                        if let Some(env) = &ch.envelope {
                            item.outcome = Some(env.outcome);
                            item.envelope = Some(env.clone());
                        }
                    }
                    Some(agent) => {
                        let st = item.agents.entry(agent).or_insert_with(AgentState::queued);
                        st.status = ch.to;
                        if ch.to == Status::Generating {
                            st.attempts += 1;
                        }
                        if let Some(e) = &ch.error {
                            st.error = Some(e.clone());
                        }
                        if let Some(a) = &ch.artifact {
                            st.artifact_id = Some(a.artifact_id);
                            new_artifacts.push(a.clone());
                        }
                        if let Some(report) = &ch.audit {
                            let id = st.artifact_id.ok_or_else(|| {
                                StoreError::corrupt(
                                    "audit",
                                    format!("{agent} has no artifact to audit"),
                                )
                            })?;
                            st.verdict = Some(report.verdict);
                            match new_artifacts.iter_mut().find(|a| a.artifact_id == id) {
                                Some(a) => a.audit = Some(report.clone()),
                                None => audits.push((id, report.clone())),
                            }
                        }
                    }
                }
                item.seq += 1;
                events.push(Event::of_change(run_id, item.seq, ch, at));
            }
            item.version += 1;
            item.updated_at = at;
            let mut writes = vec![self.put_run(&item, read_version)?];
            for e in &events {
                writes.push(self.event_put(e)?);
            }
            for a in new_artifacts {
                let art = to_item(&ArtifactItem {
                    pk: artifact_pk(a.artifact_id),
                    sk: "ART".into(),
                    artifact: a,
                })?;
                writes.push(self.put(art, "attribute_not_exists(pk)")?);
            }
            for (id, report) in audits {
                let update = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(artifact_pk(id)))
                    .key("sk", s("ART"))
                    .update_expression("SET audit = :a")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(
                        ":a",
                        serde_dynamo::to_attribute_value(&report)
                            .map_err(|e| StoreError::corrupt("audit", e))?,
                    )
                    .build()
                    .map_err(unavailable)?;
                writes.push(TransactWriteItem::builder().update(update).build());
            }
            Ok((writes, events))
        })
        .await
    }

    async fn bump_attempts(&self, run_id: RunId, agent: Agent) -> Result<u32, StoreError> {
        self.write_run(run_id, |mut item| {
            let current = item
                .agents
                .get(&agent)
                .map(|s| s.status)
                .ok_or(StoreError::NotFound(run_id))?;
            if item.status.is_terminal() || current != Status::Generating {
                return Err(StoreError::Conflict {
                    run_id,
                    scope: agent.into(),
                    expected: Status::Generating,
                    actual: current,
                    run_terminal: item.status.is_terminal(),
                });
            }
            let read_version = item.version;
            let n = {
                let st = item.agents.entry(agent).or_insert_with(AgentState::queued);
                st.attempts += 1;
                st.attempts
            };
            item.version += 1;
            Ok((vec![self.put_run(&item, read_version)?], n))
        })
        .await
    }

    async fn events(&self, run_id: RunId, after: u64) -> Result<Vec<Event>, StoreError> {
        let events = self.read_events(run_id, after).await?;
        if events.is_empty() {
            // Distinguish "nothing new" from "no such run".
            self.load(run_id).await?;
        }
        Ok(events)
    }

    async fn unfinished_runs(&self) -> Result<Vec<RunId>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = unfinished_query(&self.client, &self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_unavailable)?;
            // The index holds keys only: the run id is its sort key.
            for item in page.items.unwrap_or_default() {
                let id = item
                    .get("gsi2sk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| {
                        StoreError::corrupt("unfinished index", "an entry without gsi2sk")
                    })?;
                out.push(RunId::parse(id).map_err(|e| StoreError::corrupt("unfinished index", e))?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    async fn get_artifact(&self, id: ArtifactId) -> Result<Option<Artifact>, StoreError> {
        self.artifact(id).await
    }

    async fn record_sample(&self, sample: AgentSample) -> Result<(), StoreError> {
        let nanos = sample.at.unix_timestamp_nanos().max(0);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("SAMPLES#{}", sample.agent)))
            .item("sk", s(format!("{nanos:020}#{}", ulid::Ulid::new())))
            .item(
                "durationMs",
                AttributeValue::N(sample.duration_ms.to_string()),
            )
            .item("throttled", AttributeValue::Bool(sample.throttled))
            .item(
                "ttl",
                AttributeValue::N((sample.at + SAMPLE_TTL).unix_timestamp().to_string()),
            )
            .send()
            .await
            .map_err(sdk_unavailable)?;
        Ok(())
    }

    async fn recent_samples(
        &self,
        agent: Agent,
        limit: usize,
    ) -> Result<Vec<AgentSample>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("SAMPLES#{agent}")))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(sdk_unavailable)?;
        out.items()
            .iter()
            .map(|item| {
                let sk = item.get("sk").and_then(|v| v.as_s().ok());
                let nanos: i128 = sk
                    .and_then(|k| k.split('#').next())
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| StoreError::corrupt("agent sample", "no time in its key"))?;
                Ok(AgentSample {
                    agent,
                    at: OffsetDateTime::from_unix_timestamp_nanos(nanos)
                        .map_err(|e| StoreError::corrupt("agent sample", e))?,
                    duration_ms: item
                        .get("durationMs")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| StoreError::corrupt("agent sample", "no durationMs"))?,
                    throttled: item
                        .get("throttled")
                        .and_then(|v| v.as_bool().ok())
                        .copied()
                        .unwrap_or(false),
                })
            })
            .collect()
    }
}

impl DynamoStore {
    fn brand_item(kit: &BrandKit) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let body = serde_json::to_string(kit).map_err(|e| StoreError::corrupt("brand kit", e))?;
        Ok(HashMap::from([
            ("pk".to_string(), s(BRANDS_PARTITION)),
            ("sk".to_string(), s(&kit.brand_id)),
            (
                "version".to_string(),
                AttributeValue::N(kit.version.to_string()),
            ),
            ("body".to_string(), s(body)),
        ]))
    }

    fn brand_of(item: &HashMap<String, AttributeValue>) -> Result<BrandKit, StoreError> {
        let body = item
            .get("body")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::corrupt("brand kit", "no body"))?;
        serde_json::from_str(body).map_err(|e| StoreError::corrupt("brand kit", e))
    }
}

/// A conditional put refused (typed, from the operation's own error).
fn put_refused(
    e: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, HttpResponse>,
) -> bool {
    e.as_service_error()
        .is_some_and(|s| s.is_conditional_check_failed_exception())
}

#[async_trait]
impl BrandLibrary for DynamoStore {
    async fn create_brand(&self, kit: BrandKit) -> Result<(), BrandError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::brand_item(&kit)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if put_refused(&e) => Err(BrandError::AlreadyExists(kit.brand_id)),
            Err(e) => Err(sdk_unavailable(e).into()),
        }
    }

    async fn get_brand(&self, brand_id: &str) -> Result<Option<BrandKit>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(BRANDS_PARTITION))
            .key("sk", s(brand_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_unavailable)?;
        out.item.as_ref().map(Self::brand_of).transpose()
    }

    async fn list_brands(&self) -> Result<Vec<BrandKit>, StoreError> {
        let mut kits = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(BRANDS_PARTITION))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_unavailable)?;
            for item in out.items() {
                kits.push(Self::brand_of(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(kits),
            }
        }
    }

    async fn replace_brand(&self, kit: BrandKit) -> Result<(), BrandError> {
        let previous = kit.version.saturating_sub(1);
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::brand_item(&kit)?))
            .condition_expression("version = :prev")
            .expression_attribute_values(":prev", AttributeValue::N(previous.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if put_refused(&e) => match self.get_brand(&kit.brand_id).await? {
                None => Err(BrandError::NotFound(kit.brand_id)),
                Some(current) => Err(BrandError::VersionMismatch {
                    brand_id: kit.brand_id,
                    expected: previous,
                    current: current.version,
                }),
            },
            Err(e) => Err(sdk_unavailable(e).into()),
        }
    }

    async fn delete_brand(&self, brand_id: &str) -> Result<(), BrandError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(BRANDS_PARTITION))
            .key("sk", s(brand_id))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(BrandError::NotFound(brand_id.to_string()))
            }
            Err(e) => Err(sdk_unavailable(e).into()),
        }
    }
}

/// A query of the sparse index of unfinished runs (listing them; counting them for the
/// in-flight limit).
pub(crate) fn unfinished_query(
    client: &Client,
    table: &str,
) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    client
        .query()
        .table_name(table)
        .index_name(GSI_UNFINISHED)
        .key_condition_expression("gsi2pk = :p")
        .expression_attribute_values(":p", s(UNFINISHED_PARTITION))
}

/// Creates the table with its indexes (tests and local experiments; the SAM template
/// declares the same table for AWS).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(unavailable)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(unavailable)
    };
    let gsi = |name: &str, pk: &str, sk: &str, projection: Projection| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(projection)
            .build()
            .map_err(unavailable)
    };
    let summary = Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(
            RUN_SUMMARY_ATTRIBUTES
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ))
        .build();
    let keys_only = Projection::builder()
        .projection_type(ProjectionType::KeysOnly)
        .build();
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi(GSI_RUNS, "gsi1pk", "gsi1sk", summary)?)
        .global_secondary_indexes(gsi(GSI_UNFINISHED, "gsi2pk", "gsi2sk", keys_only)?)
        .send()
        .await
        .map_err(sdk_unavailable)?;
    Ok(())
}

#[async_trait]
impl RequestKeys for DynamoStore {
    /// `REQ#<key>/REQ` with the run id, the fingerprint and `ttl` (which also lets DynamoDB
    /// delete it eventually); a conditional put claims it, an expired claim may be taken.
    async fn claim_key(
        &self,
        key: &str,
        fingerprint: &str,
        run_id: RunId,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<KeyClaim, StoreError> {
        let pk = format!("REQ#{key}");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&pk))
            .item("sk", s("REQ"))
            .item("runId", s(run_id.to_string()))
            .item("fingerprint", s(fingerprint))
            .item(
                "ttl",
                AttributeValue::N(expires_at.unix_timestamp().to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now.unix_timestamp().to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(KeyClaim {
                run_id,
                fingerprint: fingerprint.to_string(),
                fresh: true,
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .key("sk", s("REQ"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(sdk_unavailable)?
                    .item
                    .ok_or_else(|| StoreError::corrupt("request key", "claimed, then gone"))?;
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .ok_or_else(|| StoreError::corrupt("request key", format!("no {name}")))
                };
                Ok(KeyClaim {
                    run_id: RunId::parse(&text("runId")?)
                        .map_err(|e| StoreError::corrupt("request key", e))?,
                    fingerprint: text("fingerprint")?,
                    fresh: false,
                })
            }
            Err(e) => Err(sdk_unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// New runs spread over every listing shard, so no one `gsi1` partition takes every
    /// creation (a single `RUNS` key would fail this).
    #[test]
    fn new_runs_spread_over_every_listing_shard() {
        let mut per_shard = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..800 {
            *per_shard.entry(runs_shard(RunId::new())).or_default() += 1;
        }
        assert_eq!(per_shard.len() as u128, RUN_SHARDS, "{per_shard:?}");
        // 100 expected per shard; a shard under 40 would mean the spread is not uniform.
        assert!(per_shard.values().all(|&n| n >= 40), "{per_shard:?}");
        for shard in per_shard.keys() {
            let n: u128 = shard.strip_prefix("RUNS#").unwrap().parse().unwrap();
            assert!(n < RUN_SHARDS);
        }
    }
}
