//! The one transition table for runs and agents. Stores apply a transition only if
//! [`check`] accepts it (and, in DynamoDB, only if the stored status is still the expected one).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Generating,
    Generated,
    Auditing,
    AuditPending,
    Completed,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Queued,
        Status::Generating,
        Status::Generated,
        Status::Auditing,
        Status::AuditPending,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Generating => "generating",
            Status::Generated => "generated",
            Status::Auditing => "auditing",
            Status::AuditPending => "audit_pending",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

/// Whose lifecycle a transition belongs to. Runs and agents share the statuses but not
/// every edge: an agent can fail while generating; a run fails only when nothing survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Run,
    Agent,
}

/// The transition table. Terminal states have no exits.
pub fn allowed(subject: Subject, from: Status, to: Status) -> bool {
    use Status::*;
    let common = match (from, to) {
        (Queued, Generating) => true,
        (Generating, Generated) => true,
        (Generated, Auditing) => true,
        (Auditing, Completed) => true,
        // Audit deferred: the audit step itself failed, or was unavailable.
        (Generated | Auditing, AuditPending) => true,
        (AuditPending, Auditing) => true,
        // Cancellation from any non-terminal state.
        (Queued | Generating | Generated | Auditing | AuditPending, Cancelled) => true,
        // Failure: an agent fails while generating; a run fails when every agent did, when
        // its workflow fails or times out, or when it cannot be resumed after a crash.
        (Queued | Generating, Failed) => true,
        (Generated | Auditing | AuditPending, Failed) => subject == Subject::Run,
        _ => false,
    };
    // A run whose agents all failed goes straight from generating to its envelope; a run
    // whose only artifacts were reused from its parent skips generation.
    let run_only = subject == Subject::Run && matches!((from, to), (Queued, Generated));
    common || run_only
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn the_happy_path_is_allowed_for_runs_and_agents() {
        for s in [Subject::Run, Subject::Agent] {
            for w in [Queued, Generating, Generated, Auditing, Completed].windows(2) {
                assert!(allowed(s, w[0], w[1]), "{:?} {:?}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn terminal_states_have_no_exits() {
        for from in [Completed, Failed, Cancelled] {
            for to in Status::ALL {
                assert!(!allowed(Subject::Run, from, to));
                assert!(!allowed(Subject::Agent, from, to));
            }
        }
    }

    #[test]
    fn skipping_a_step_is_illegal() {
        assert!(!allowed(Subject::Agent, Queued, Completed));
        assert!(!allowed(Subject::Run, Generating, Completed));
    }

    #[test]
    fn audit_can_be_deferred_and_resumed() {
        assert!(allowed(Subject::Run, Auditing, AuditPending));
        assert!(allowed(Subject::Run, AuditPending, Auditing));
        assert!(!allowed(Subject::Run, AuditPending, Completed));
    }

    #[test]
    fn every_non_terminal_state_can_be_cancelled() {
        for from in Status::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(allowed(Subject::Run, from, Cancelled));
            assert!(allowed(Subject::Agent, from, Cancelled));
        }
    }

    #[test]
    fn an_agent_cannot_fail_after_it_has_generated() {
        assert!(!allowed(Subject::Agent, Generated, Failed));
        assert!(allowed(Subject::Run, Generated, Failed));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
