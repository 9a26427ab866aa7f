//! Lifecycle events: one per transition of a run or an agent, numbered per run by a
//! gapless `seq` starting at 1. Stores assign `seq`; clients drop a `seq` they have seen.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::agent::Agent;
use super::ids::RunId;
use super::lifecycle::Status;

/// `run` or an agent name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Run,
    Copy,
    Social,
    Visual,
}

impl Scope {
    pub fn agent(self) -> Option<Agent> {
        match self {
            Scope::Run => None,
            Scope::Copy => Some(Agent::Copy),
            Scope::Social => Some(Agent::Social),
            Scope::Visual => Some(Agent::Visual),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Run => "run",
            Scope::Copy => "copy",
            Scope::Social => "social",
            Scope::Visual => "visual",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Agent> for Scope {
    fn from(a: Agent) -> Self {
        match a {
            Agent::Copy => Scope::Copy,
            Agent::Social => Scope::Social,
            Agent::Visual => Scope::Visual,
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "run" => Ok(Scope::Run),
            other => other.parse::<Agent>().map(Scope::from),
        }
    }
}

/// `run.status` for run transitions, `agent.status` for agent transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "run.status")]
    RunStatus,
    #[serde(rename = "agent.status")]
    AgentStatus,
}

impl EventType {
    pub fn for_scope(scope: Scope) -> Self {
        if scope == Scope::Run {
            Self::RunStatus
        } else {
            Self::AgentStatus
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub run_id: RunId,
    pub seq: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub scope: Scope,
    pub status: Status,
    #[serde(with = "crate::domain::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// Checks that `events` of one run are numbered 1, 2, 3, … without gaps or repeats.
pub fn check_gapless(events: &[Event]) -> Result<(), String> {
    for (i, e) in events.iter().enumerate() {
        let want = i as u64 + 1;
        if e.seq != want {
            return Err(format!("event #{i} has seq {}, expected {want}", e.seq));
        }
    }
    Ok(())
}
