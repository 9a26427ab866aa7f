//! `GET /metrics` of `campaign serve`: counters and durations aggregated from the event
//! bus, in the Prometheus text format. (In AWS the same figures are EMF log lines.)

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;

use campaign_shared::adapters::local::bus::Bus;
use campaign_shared::domain::{Event, RunId, Scope, Status};

#[derive(Debug, Default)]
struct Inner {
    started: u64,
    terminal: BTreeMap<(String, String), u64>,
    agent_failures: BTreeMap<String, u64>,
    created: HashMap<RunId, time::OffsetDateTime>,
    first_artifact: HashMap<RunId, ()>,
    duration_ms_sum: f64,
    duration_count: u64,
    ttfa_ms_sum: f64,
    ttfa_count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Aggregates every event published on `bus` until the bus closes.
    pub fn spawn(bus: &Bus) -> std::sync::Arc<Metrics> {
        let m = std::sync::Arc::new(Metrics::default());
        let mut rx = bus.subscribe();
        let me = m.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => me.record(&e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        });
        m
    }

    fn record(&self, e: &Event) {
        let Ok(mut m) = self.inner.lock() else { return };
        match (e.scope, e.status) {
            (Scope::Run, Status::Queued) => {
                m.started += 1;
                m.created.insert(e.run_id, e.at);
            }
            (Scope::Run, s) if s.is_terminal() => {
                let outcome = e
                    .detail
                    .as_ref()
                    .and_then(|d| d.get("outcome"))
                    .and_then(|o| o.as_str())
                    .unwrap_or("none")
                    .to_string();
                *m.terminal
                    .entry((s.as_str().to_string(), outcome))
                    .or_default() += 1;
                m.first_artifact.remove(&e.run_id);
                if let Some(c) = m.created.remove(&e.run_id) {
                    m.duration_ms_sum += (e.at - c).as_seconds_f64() * 1000.0;
                    m.duration_count += 1;
                }
            }
            (scope, Status::Failed) if scope != Scope::Run => {
                *m.agent_failures
                    .entry(scope.as_str().to_string())
                    .or_default() += 1;
            }
            (scope, Status::Generated)
                if scope != Scope::Run && m.first_artifact.insert(e.run_id, ()).is_none() =>
            {
                if let Some(c) = m.created.get(&e.run_id).copied() {
                    m.ttfa_ms_sum += (e.at - c).as_seconds_f64() * 1000.0;
                    m.ttfa_count += 1;
                }
            }
            _ => {}
        }
    }

    pub fn render(&self, in_flight: usize) -> String {
        let Ok(m) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP campaign_runs_started_total Runs accepted since start-up.\n# TYPE campaign_runs_started_total counter"
        );
        let _ = writeln!(out, "campaign_runs_started_total {}", m.started);
        let _ = writeln!(
            out,
            "# HELP campaign_runs_finished_total Runs that reached a terminal status, by status and outcome.\n# TYPE campaign_runs_finished_total counter"
        );
        for ((status, outcome), n) in &m.terminal {
            let _ = writeln!(
                out,
                "campaign_runs_finished_total{{status=\"{status}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP campaign_agent_failures_total Agent failures, by agent.\n# TYPE campaign_agent_failures_total counter"
        );
        for (agent, n) in &m.agent_failures {
            let _ = writeln!(
                out,
                "campaign_agent_failures_total{{agent=\"{agent}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP campaign_executions_in_flight Executions running now.\n# TYPE campaign_executions_in_flight gauge"
        );
        let _ = writeln!(out, "campaign_executions_in_flight {in_flight}");
        let _ = writeln!(
            out,
            "# HELP campaign_orchestration_duration_ms Creation to terminal status.\n# TYPE campaign_orchestration_duration_ms summary"
        );
        let _ = writeln!(
            out,
            "campaign_orchestration_duration_ms_sum {:.3}\ncampaign_orchestration_duration_ms_count {}",
            m.duration_ms_sum, m.duration_count
        );
        let _ = writeln!(
            out,
            "# HELP campaign_time_to_first_artifact_ms Creation to the first generated artifact.\n# TYPE campaign_time_to_first_artifact_ms summary"
        );
        let _ = writeln!(
            out,
            "campaign_time_to_first_artifact_ms_sum {:.3}\ncampaign_time_to_first_artifact_ms_count {}",
            m.ttfa_ms_sum, m.ttfa_count
        );
        out
    }
}
