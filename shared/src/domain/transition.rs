//! Transitions: a batch of status changes, the statuses it is checked against, and the one
//! check every store applies before writing anything (the lifecycle table, `from` statuses,
//! nothing after the run is closed).

use serde_json::Value;
use time::OffsetDateTime;

use super::lifecycle::{Subject, allowed};
use super::{
    Agent, AgentError, Artifact, AuditReport, Envelope, Event, EventType, RunId, Scope, Status,
};

/// One requested status change within an atomic batch (see `RunStore::apply`).
#[derive(Debug, Clone)]
pub struct Change {
    pub scope: Scope,
    /// The status the subject MUST have when the change is applied.
    pub from: Status,
    pub to: Status,
    /// Agent changes: the artifact stored with this change (written in the same transaction).
    pub artifact: Option<Artifact>,
    /// Agent changes: the audit report of the agent's current artifact.
    pub audit: Option<AuditReport>,
    /// Agent changes: why it failed.
    pub error: Option<AgentError>,
    /// Run changes: the result envelope (set with the terminal transition).
    pub envelope: Option<Envelope>,
    /// Free-form detail carried by the event.
    pub detail: Option<Value>,
    /// A subject found already in `to` makes the change a no-op (nothing written, no
    /// event) instead of a conflict: for a transition several writers race to make — each
    /// of the parallel agents moves the run to `generating` with its own start, and only
    /// the first one's takes effect.
    pub unless_already: bool,
}

impl Event {
    /// The event a change yields, numbered `seq`.
    pub fn of_change(run_id: RunId, seq: u64, ch: &Change, at: OffsetDateTime) -> Event {
        Event {
            run_id,
            seq,
            kind: EventType::for_scope(ch.scope),
            scope: ch.scope,
            status: ch.to,
            at,
            detail: ch.detail.clone(),
        }
    }
}

impl Change {
    pub fn new(scope: impl Into<Scope>, from: Status, to: Status) -> Self {
        Change {
            scope: scope.into(),
            from,
            to,
            artifact: None,
            audit: None,
            error: None,
            envelope: None,
            detail: None,
            unless_already: false,
        }
    }
    pub fn run(from: Status, to: Status) -> Self {
        Change::new(Scope::Run, from, to)
    }
    pub fn with_artifact(mut self, a: Artifact) -> Self {
        self.artifact = Some(a);
        self
    }
    pub fn with_audit(mut self, r: AuditReport) -> Self {
        self.audit = Some(r);
        self
    }
    pub fn with_error(mut self, e: AgentError) -> Self {
        self.error = Some(e);
        self
    }
    pub fn with_envelope(mut self, e: Envelope) -> Self {
        self.envelope = Some(e);
        self
    }
    pub fn with_detail(mut self, d: Value) -> Self {
        self.detail = Some(d);
        self
    }
    /// See [`Change::unless_already`].
    pub fn unless_already(mut self) -> Self {
        self.unless_already = true;
        self
    }
}

/// The statuses a batch of changes is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub run: Status,
    pub agents: std::collections::BTreeMap<Agent, Status>,
}

/// Why a batch of changes cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The subject's status was not the change's `from`, the transition is not in the
    /// lifecycle table, or (`run_terminal`) the run is already closed.
    Conflict {
        scope: Scope,
        expected: Status,
        actual: Status,
        run_terminal: bool,
    },
    /// The run has no such agent.
    NoAgent(Agent),
}

/// A batch that passed [`check`]: the statuses after it, and the changes that take effect
/// (all of them but those [`Change::unless_already`] found done), in order.
#[derive(Debug)]
pub struct Checked<'a> {
    pub after: Snapshot,
    pub effective: Vec<&'a Change>,
}

/// The one check every store applies to a batch (see `RunStore::apply`): each change must
/// find its subject in `from`, be in the lifecycle table, and an agent change must come
/// before the run is terminal; a change marked [`Change::unless_already`] whose subject is
/// already in `to` is passed over.
pub fn check(mut snap: Snapshot, changes: &[Change]) -> Result<Checked<'_>, Refused> {
    let mut effective = Vec::with_capacity(changes.len());
    for ch in changes {
        let conflict = |actual: Status, run_terminal: bool| Refused::Conflict {
            scope: ch.scope,
            expected: ch.from,
            actual,
            run_terminal,
        };
        match ch.scope.agent() {
            None => {
                if ch.unless_already && snap.run == ch.to {
                    continue;
                }
                if snap.run != ch.from || !allowed(Subject::Run, ch.from, ch.to) {
                    return Err(conflict(snap.run, snap.run.is_terminal()));
                }
                snap.run = ch.to;
            }
            Some(agent) => {
                let current = *snap.agents.get(&agent).ok_or(Refused::NoAgent(agent))?;
                if snap.run.is_terminal() {
                    return Err(conflict(current, true));
                }
                if ch.unless_already && current == ch.to {
                    continue;
                }
                if current != ch.from || !allowed(Subject::Agent, ch.from, ch.to) {
                    return Err(conflict(current, false));
                }
                snap.agents.insert(agent, ch.to);
            }
        }
        effective.push(ch);
    }
    Ok(Checked {
        after: snap,
        effective,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(run: Status, copy: Status) -> Snapshot {
        Snapshot {
            run,
            agents: [(Agent::Copy, copy)].into_iter().collect(),
        }
    }

    #[test]
    fn a_batch_is_checked_change_by_change_against_the_statuses_before_it() {
        let after = check(
            snap(Status::Queued, Status::Queued),
            &[
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Generating, Status::Generated),
            ],
        )
        .unwrap()
        .after;
        assert_eq!(after, snap(Status::Generating, Status::Generated));
    }

    #[test]
    fn a_change_unless_already_is_passed_over_when_done_and_checked_otherwise() {
        let start = Change::new(Agent::Copy, Status::Queued, Status::Generating);
        let run = Change::run(Status::Queued, Status::Generating).unless_already();
        let batch = [run, start.clone()];
        // The first writer: both take effect.
        let first = check(snap(Status::Queued, Status::Queued), &batch).unwrap();
        assert_eq!(first.effective.len(), 2);
        assert_eq!(first.after, snap(Status::Generating, Status::Generating));
        // A later one: the run is already generating, only the agent's start takes effect.
        let later = check(snap(Status::Generating, Status::Queued), &batch).unwrap();
        assert_eq!(later.effective.len(), 1);
        assert_eq!(later.effective[0].scope, Scope::Copy);
        // Anywhere else it is checked like any change: a closed run refuses it.
        assert_eq!(
            check(snap(Status::Cancelled, Status::Queued), &batch).unwrap_err(),
            Refused::Conflict {
                scope: Scope::Run,
                expected: Status::Queued,
                actual: Status::Cancelled,
                run_terminal: true
            }
        );
        // Without the mark, the same later batch is a conflict.
        let plain = Change::run(Status::Queued, Status::Generating);
        assert!(matches!(
            check(snap(Status::Generating, Status::Queued), &[plain, start]),
            Err(Refused::Conflict {
                scope: Scope::Run,
                ..
            })
        ));
    }

    #[test]
    fn a_wrong_from_an_illegal_step_a_closed_run_and_an_unknown_agent_are_refused() {
        let s = snap(Status::Generating, Status::Generating);
        assert_eq!(
            check(
                s.clone(),
                &[Change::new(Agent::Copy, Status::Queued, Status::Generating)]
            )
            .unwrap_err(),
            Refused::Conflict {
                scope: Scope::Copy,
                expected: Status::Queued,
                actual: Status::Generating,
                run_terminal: false
            }
        );
        assert!(matches!(
            check(
                s.clone(),
                &[Change::new(Agent::Copy, Status::Generating, Status::Queued)]
            ),
            Err(Refused::Conflict { .. })
        ));
        assert!(matches!(
            check(
                snap(Status::Cancelled, Status::Generating),
                &[Change::new(
                    Agent::Copy,
                    Status::Generating,
                    Status::Generated
                )]
            ),
            Err(Refused::Conflict {
                run_terminal: true,
                ..
            })
        ));
        assert_eq!(
            check(
                s,
                &[Change::new(
                    Agent::Social,
                    Status::Queued,
                    Status::Generating
                )]
            )
            .unwrap_err(),
            Refused::NoAgent(Agent::Social)
        );
    }
}
