//! The payloads of the state machine's Tasks, as `statemachine.asl.json` writes them.

use serde::{Deserialize, Serialize};

use crate::domain::{Agent, RunId};

/// What an agent Task is asked to do: generate the agent's artifact, or — as the Catch
/// handler of that Task — record why it failed. On the wire one object,
/// `{"runId": …, "failure"?: {"Error": …, "Cause": …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AgentPayload", into = "AgentPayload")]
pub enum AgentTask {
    Generate { run_id: RunId },
    RecordFailure { run_id: RunId, failure: CaughtError },
}

impl AgentTask {
    pub fn run_id(&self) -> RunId {
        match self {
            AgentTask::Generate { run_id } | AgentTask::RecordFailure { run_id, .. } => *run_id,
        }
    }
}

/// [`AgentTask`] as the state machine writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentPayload {
    run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<CaughtError>,
}

impl From<AgentPayload> for AgentTask {
    fn from(p: AgentPayload) -> Self {
        match p.failure {
            None => AgentTask::Generate { run_id: p.run_id },
            Some(failure) => AgentTask::RecordFailure {
                run_id: p.run_id,
                failure,
            },
        }
    }
}

impl From<AgentTask> for AgentPayload {
    fn from(t: AgentTask) -> Self {
        match t {
            AgentTask::Generate { run_id } => AgentPayload {
                run_id,
                failure: None,
            },
            AgentTask::RecordFailure { run_id, failure } => AgentPayload {
                run_id,
                failure: Some(failure),
            },
        }
    }
}

/// What a Catch puts at its ResultPath.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

    #[test]
    fn an_agent_payload_with_a_failure_is_the_catch_handler_and_round_trips() {
        let run_id = RunId::new();
        let generate: AgentTask =
            serde_json::from_value(serde_json::json!({ "runId": run_id })).unwrap();
        assert_eq!(generate, AgentTask::Generate { run_id });
        let failed = serde_json::json!({
            "runId": run_id,
            "failure": { "Error": "AgentFailed", "Cause": "the model refused" }
        });
        let record: AgentTask = serde_json::from_value(failed.clone()).unwrap();
        assert_eq!(
            record,
            AgentTask::RecordFailure {
                run_id,
                failure: caught("AgentFailed", Some("the model refused"))
            }
        );
        assert_eq!(serde_json::to_value(&record).unwrap(), failed);
        assert_eq!(
            serde_json::to_value(&generate).unwrap(),
            serde_json::json!({ "runId": run_id })
        );
        // A payload without a run id is refused.
        assert!(
            serde_json::from_value::<AgentTask>(serde_json::json!({ "failure": null })).is_err()
        );
    }
}
