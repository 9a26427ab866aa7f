//! The run as clients see it (`GET /campaigns/{runId}`), and its per-agent state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::agent::Agent;
use super::artifact::{Artifact, Verdict};
use super::brief::{Brief, ExecutionMode};
use super::envelope::{AgentSummary, Envelope};
use super::ids::{ArtifactId, RunId};
use super::lifecycle::Status;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    /// One of the error names (`AgentFailed`, `States.Timeout`, …).
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_id: Option<ArtifactId>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AgentError>,
    /// Set when the artifact was reused from the parent run by a retry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
    /// The audit verdict of its artifact, once audited in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

impl AgentState {
    pub fn queued() -> Self {
        AgentState {
            status: Status::Queued,
            artifact_id: None,
            attempts: 0,
            error: None,
            reused: false,
            verdict: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_first_artifact_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
    pub iteration: u32,
    pub status: Status,
    /// The mode the run runs in (for an `auto` brief: the one decided).
    pub execution_mode: ExecutionMode,
    /// For an `auto` brief: what was decided and from which figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_decision: Option<super::mode::ModeDecision>,
    pub brief: Brief,
    #[serde(with = "crate::domain::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::domain::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub agents: BTreeMap<Agent, AgentState>,
    pub artifacts: Vec<Artifact>,
    pub timings: Timings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
}

/// A run as `GET /campaigns` lists it: enough to choose one, nothing that needs the
/// artifacts or the event log (the DynamoDB store reads it from the listing index alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: RunId,
    pub parent_run_id: Option<RunId>,
    pub iteration: u32,
    pub status: Status,
    pub execution_mode: ExecutionMode,
    #[serde(with = "crate::domain::rfc3339")]
    pub created_at: OffsetDateTime,
    pub outcome: Option<super::envelope::Outcome>,
    pub product: String,
}

impl Run {
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id,
            parent_run_id: self.parent_run_id,
            iteration: self.iteration,
            status: self.status,
            execution_mode: self.execution_mode,
            created_at: self.created_at,
            outcome: self.envelope.as_ref().map(|e| e.outcome),
            product: self.brief.product.clone(),
        }
    }

    /// The summaries [`super::envelope::compute`] needs.
    pub fn agent_summaries(&self) -> Vec<AgentSummary> {
        self.agents
            .iter()
            .map(|(agent, st)| AgentSummary {
                agent: *agent,
                status: st.status,
                verdict: st.verdict.or_else(|| {
                    st.artifact_id
                        .and_then(|id| self.artifacts.iter().find(|a| a.artifact_id == id))
                        .and_then(|a| a.audit.as_ref().map(|r| r.verdict))
                }),
                error: st
                    .error
                    .as_ref()
                    .map(|e| (e.code.clone(), e.message.clone())),
            })
            .collect()
    }
}

fn ms_between(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    (to - from).whole_milliseconds().max(0) as u64
}

/// Timings follow from the event log, so they are never stored separately:
/// * time to first artifact — creation to the first agent `generated`;
/// * total — creation to the run's terminal event;
/// * audit latency — first `auditing` to the last agent leaving `auditing` (the time the
///   audit added).
pub fn timings_from_events(created_at: OffsetDateTime, events: &[super::Event]) -> Timings {
    let marks: Vec<Mark> = events.iter().map(Mark::of).collect();
    timings_from_marks(created_at, &marks)
}

/// What [`timings_from_marks`] needs of an event: whom it moved, to what, when, and
/// whether it carries an audit verdict. A store may read just this much of its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub scope: super::Scope,
    pub status: Status,
    pub at: OffsetDateTime,
    pub verdict: bool,
}

impl Mark {
    pub fn of(e: &super::Event) -> Mark {
        Mark {
            scope: e.scope,
            status: e.status,
            at: e.at,
            verdict: e
                .detail
                .as_ref()
                .is_some_and(|d| d.get("verdict").is_some()),
        }
    }
}

/// [`timings_from_events`], from the events' marks.
pub fn timings_from_marks(created_at: OffsetDateTime, events: &[Mark]) -> Timings {
    use super::Scope;
    let first_artifact = events
        .iter()
        .find(|e| e.scope != Scope::Run && e.status == Status::Generated)
        .map(|e| ms_between(created_at, e.at));
    let total = events
        .iter()
        .rev()
        .find(|e| e.scope == Scope::Run && e.status.is_terminal())
        .map(|e| ms_between(created_at, e.at));
    let audit_start = events
        .iter()
        .find(|e| e.status == Status::Auditing)
        .map(|e| e.at);
    let audit_end = events
        .iter()
        .rev()
        .find(|e| e.scope != Scope::Run && e.status == Status::Completed && e.verdict)
        .map(|e| e.at);
    let audit = match (audit_start, audit_end) {
        (Some(s), Some(e)) if e >= s => Some(ms_between(s, e)),
        _ => None,
    };
    Timings {
        time_to_first_artifact_ms: first_artifact,
        total_ms: total,
        audit_latency_ms: audit,
    }
}
