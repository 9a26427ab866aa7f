//! What the system tells its operators, the same way in both deployments: one structured
//! log line per transition, and the seed's metrics through the `metrics` facade. Each
//! deployment installs the recorder — Prometheus for `campaign serve` (`GET /metrics`),
//! CloudWatch Embedded Metric Format lines in the Lambdas — so the names below are the
//! names in both, and the template's dashboard and alarms are built on them.

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::domain::{Event, Run, Scope, Status};

/// The CloudWatch namespace of the EMF metrics.
pub const NAMESPACE: &str = "CampaignOrchestration";

/// Runs created (every submission, retries included).
pub const RUNS_STARTED: &str = "campaign_runs_started_total";
/// Runs that reached a terminal status, by `outcome` (success, partial, failure,
/// cancelled): the cancellation rate is `outcome="cancelled"` over all.
pub const RUNS: &str = "campaign_runs_total";
/// Creation to terminal status: the orchestration duration.
pub const RUN_DURATION: &str = "campaign_run_duration_seconds";
/// Creation to the first generated artifact.
pub const TIME_TO_FIRST_ARTIFACT: &str = "campaign_time_to_first_artifact_seconds";
/// What the audit added: first `auditing` to the last audited artifact.
pub const AUDIT_LATENCY: &str = "campaign_audit_latency_seconds";
/// Agents of closed runs, by `agent`; with [`AGENT_FAILURES`], the failure rate per agent.
pub const AGENTS: &str = "campaign_agents_total";
/// Agents of closed runs that failed, by `agent`.
pub const AGENT_FAILURES: &str = "campaign_agent_failures_total";

/// A model-backed agent's request to its first token, by `agent`.
pub const MODEL_FIRST_TOKEN: &str = "campaign_model_first_token_seconds";
/// A model-backed agent's request to its accepted answer (repair included), by `agent`.
pub const MODEL_LATENCY: &str = "campaign_model_latency_seconds";

/// Every metric name, for the template and dashboard checks.
pub const METRICS: [&str; 9] = [
    RUNS_STARTED,
    RUNS,
    RUN_DURATION,
    TIME_TO_FIRST_ARTIFACT,
    AUDIT_LATENCY,
    AGENTS,
    AGENT_FAILURES,
    MODEL_FIRST_TOKEN,
    MODEL_LATENCY,
];

/// Histogram buckets (seconds) for the durations: built-in agents take milliseconds,
/// model-backed ones seconds; the seed's time-to-first-artifact target is 15 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
    900.0,
];

/// Describes the metrics (help text and units) to the installed recorder.
pub fn describe() {
    describe_counter!(RUNS_STARTED, Unit::Count, "Runs created.");
    describe_counter!(
        RUNS,
        Unit::Count,
        "Runs that reached a terminal status, by outcome."
    );
    describe_histogram!(
        RUN_DURATION,
        Unit::Seconds,
        "Creation to terminal status of a run."
    );
    describe_histogram!(
        TIME_TO_FIRST_ARTIFACT,
        Unit::Seconds,
        "Creation to the first generated artifact of a run."
    );
    describe_histogram!(
        AUDIT_LATENCY,
        Unit::Seconds,
        "Time the audit added to a run."
    );
    describe_counter!(AGENTS, Unit::Count, "Agents of closed runs, by agent.");
    describe_histogram!(
        MODEL_FIRST_TOKEN,
        Unit::Seconds,
        "A model-backed agent's request to its first token, by agent."
    );
    describe_histogram!(
        MODEL_LATENCY,
        Unit::Seconds,
        "A model-backed agent's request to its accepted answer, by agent."
    );
    describe_counter!(
        AGENT_FAILURES,
        Unit::Count,
        "Agents of closed runs that failed, by agent."
    );
}

/// One log line per applied transition: `(scope, from)` of each change (`from` is `None`
/// for a run's creation), with the event it yielded. Every transition of both deployments
/// goes through here.
pub fn transitions(moves: &[(Scope, Option<Status>)], events: &[Event]) {
    // The events are the moves that took effect, in order (a change marked
    // `unless_already` and found done has none): each event pairs with the next move of
    // its scope.
    let mut moves = moves.iter();
    for e in events {
        let Some((scope, from)) = moves.by_ref().find(|(s, _)| *s == e.scope) else {
            break;
        };
        tracing::info!(
            run_id = %e.run_id,
            agent = scope.agent().map(|a| a.as_str()),
            scope = scope.as_str(),
            from = from.map(Status::as_str),
            to = e.status.as_str(),
            seq = e.seq,
            "transition"
        );
    }
}

/// A run was created.
pub fn run_started() {
    counter!(RUNS_STARTED).increment(1);
}

/// A run reached its terminal status: its figures, from the same event log the API's
/// timings come from.
pub fn run_closed(run: &Run) {
    let t = &run.timings;
    let outcome = run
        .envelope
        .as_ref()
        .map(|e| e.outcome.as_str())
        .unwrap_or(run.status.as_str());
    counter!(RUNS, "outcome" => outcome).increment(1);
    let seconds = |ms: u64| ms as f64 / 1000.0;
    if let Some(ms) = t.total_ms {
        histogram!(RUN_DURATION).record(seconds(ms));
    }
    if let Some(ms) = t.time_to_first_artifact_ms {
        histogram!(TIME_TO_FIRST_ARTIFACT).record(seconds(ms));
    }
    if let Some(ms) = t.audit_latency_ms {
        histogram!(AUDIT_LATENCY).record(seconds(ms));
    }
    for (agent, st) in &run.agents {
        counter!(AGENTS, "agent" => agent.as_str()).increment(1);
        if st.status == Status::Failed {
            counter!(AGENT_FAILURES, "agent" => agent.as_str()).increment(1);
        }
    }
}
