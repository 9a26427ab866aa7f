//! The result envelope: what a run achieved, why not more, and what a retry would re-run.

use serde::{Deserialize, Serialize};

use super::agent::Agent;
use super::artifact::Verdict;
use super::ids::RunId;
use super::lifecycle::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Partial,
    Failure,
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Partial => "partial",
            Outcome::Failure => "failure",
            Outcome::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryOption {
    pub agents: Vec<Agent>,
    pub href: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryOption>,
}

/// What the envelope needs to know of one agent.
#[derive(Debug, Clone)]
pub struct AgentSummary {
    pub agent: Agent,
    pub status: Status,
    /// The audit verdict of its artifact, when it has an audited one.
    pub verdict: Option<Verdict>,
    /// Error name and message when it failed.
    pub error: Option<(String, String)>,
}

/// Computes the envelope of a run that has reached (or is about to reach) a terminal state.
/// An agent counts as delivered when it completed with an artifact that did not fail audit.
pub fn compute(run_id: RunId, cancelled: bool, agents: &[AgentSummary]) -> Envelope {
    let mut reasons = Vec::new();
    let mut redo = Vec::new();
    let mut delivered = 0;
    if cancelled {
        reasons.push(Reason {
            agent: None,
            code: "Cancelled".into(),
            message: "the run was cancelled; completed artifacts are kept".into(),
        });
    }
    for a in agents {
        match (a.status, a.verdict) {
            (Status::Completed, Some(Verdict::Fail)) => {
                redo.push(a.agent);
                reasons.push(Reason {
                    agent: Some(a.agent),
                    code: "AuditFailed".into(),
                    message: format!("the {} artifact failed the compliance audit", a.agent),
                });
            }
            (Status::Completed, _) => delivered += 1,
            (Status::Failed, _) => {
                redo.push(a.agent);
                let (code, message) = a.error.clone().unwrap_or_else(|| {
                    (
                        "AgentFailed".into(),
                        format!("the {} agent failed", a.agent),
                    )
                });
                reasons.push(Reason {
                    agent: Some(a.agent),
                    code,
                    message,
                });
            }
            (status, _) => {
                redo.push(a.agent);
                if !cancelled {
                    reasons.push(Reason {
                        agent: Some(a.agent),
                        code: "Incomplete".into(),
                        message: format!("the {} agent ended {status}", a.agent),
                    });
                }
            }
        }
    }
    let outcome = if cancelled {
        Outcome::Cancelled
    } else if redo.is_empty() {
        Outcome::Success
    } else if delivered > 0 {
        Outcome::Partial
    } else {
        Outcome::Failure
    };
    let retry = (!redo.is_empty()).then(|| RetryOption {
        agents: redo,
        href: format!("/campaigns/{run_id}/retry"),
    });
    Envelope {
        outcome,
        reasons,
        retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(agent: Agent, status: Status, verdict: Option<Verdict>) -> AgentSummary {
        AgentSummary {
            agent,
            status,
            verdict,
            error: None,
        }
    }

    #[test]
    fn all_delivered_is_success_without_retry() {
        let e = compute(
            RunId::new(),
            false,
            &Agent::ALL.map(|a| s(a, Status::Completed, Some(Verdict::Pass))),
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert!(e.retry.is_none() && e.reasons.is_empty());
    }

    #[test]
    fn one_failed_agent_makes_a_partial_run_that_retries_exactly_it() {
        let id = RunId::new();
        let mut agents = Agent::ALL
            .map(|a| s(a, Status::Completed, Some(Verdict::Warn)))
            .to_vec();
        agents[1].status = Status::Failed;
        agents[1].error = Some(("AgentFailed".into(), "boom".into()));
        let e = compute(id, false, &agents);
        assert_eq!(e.outcome, Outcome::Partial);
        assert_eq!(e.reasons[0].agent, Some(Agent::Social));
        assert_eq!(e.reasons[0].message, "boom");
        let r = e.retry.unwrap();
        assert_eq!(r.agents, vec![Agent::Social]);
        assert_eq!(r.href, format!("/campaigns/{id}/retry"));
    }

    #[test]
    fn an_artifact_that_fails_audit_is_retried() {
        let mut agents = Agent::ALL
            .map(|a| s(a, Status::Completed, Some(Verdict::Pass)))
            .to_vec();
        agents[0].verdict = Some(Verdict::Fail);
        let e = compute(RunId::new(), false, &agents);
        assert_eq!(e.outcome, Outcome::Partial);
        assert_eq!(e.reasons[0].code, "AuditFailed");
    }

    #[test]
    fn nothing_delivered_is_failure() {
        let e = compute(
            RunId::new(),
            false,
            &Agent::ALL.map(|a| s(a, Status::Failed, None)),
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.retry.unwrap().agents.len(), 3);
    }

    #[test]
    fn a_cancelled_run_offers_to_redo_what_did_not_finish() {
        let agents = [
            s(Agent::Copy, Status::Completed, Some(Verdict::Pass)),
            s(Agent::Social, Status::Cancelled, None),
            s(Agent::Visual, Status::Cancelled, None),
        ];
        let e = compute(RunId::new(), true, &agents);
        assert_eq!(e.outcome, Outcome::Cancelled);
        assert_eq!(e.retry.unwrap().agents, vec![Agent::Social, Agent::Visual]);
    }
}
