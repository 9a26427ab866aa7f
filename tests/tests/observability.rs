//! What operators see of the local deployment: every transition is one structured log
//! line, and `GET /metrics` carries the seed's metrics as Prometheus instruments (the
//! Lambdas emit the same instruments as EMF; see `lambda_binaries.rs`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use campaign_tests::{TestServer, example_brief};
use serde_json::{Value, json};

/// Every log line of this test process, as JSON.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter("info")
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

fn transition_lines(run_id: &str) -> Vec<Value> {
    let bytes = captured().0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["fields"].clone())
        .filter(|f| f["message"] == "transition" && f["run_id"] == run_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transition_is_one_log_line_with_run_agent_from_to_and_seq() {
    captured();
    let s = TestServer::start(&["visual=error"]).await;
    let id = s.submit(&example_brief()).await;
    s.wait_terminal(&id).await;
    let events = s.events(&id, 0).await;
    // A transition is logged just after its write commits, so the run can read as
    // terminal a moment before its last line is written: wait for it (bounded).
    let mut lines = transition_lines(&id);
    for _ in 0..100 {
        if lines.len() >= events.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        lines = transition_lines(&id);
    }
    assert_eq!(lines.len(), events.len(), "{lines:#?}\n{events:#?}");
    for e in &events {
        let line = lines
            .iter()
            .find(|l| l["seq"] == e["seq"])
            .unwrap_or_else(|| panic!("no log line for {e}"));
        assert_eq!(line["to"], e["status"]);
        assert_eq!(line["scope"], e["scope"]);
        if e["scope"] != "run" {
            assert_eq!(line["agent"], e["scope"]);
        }
        // Only the run's creation has no prior status.
        assert_eq!(line["from"].is_null(), e["seq"] == 1, "{line}");
    }
    let failed = lines
        .iter()
        .find(|l| l["agent"] == "visual" && l["to"] == "failed")
        .unwrap();
    assert_eq!(failed["from"], "generating");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_logged_at_info_with_their_status() {
    captured();
    let s = TestServer::start(&[]).await;
    let (status, _) = s.get("/campaigns/01JD5Z8X7Q2M4N6P8R0S2T4V6W").await;
    assert_eq!(status, 404);
    let bytes = captured().0.lock().unwrap().clone();
    let logged = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .any(|l| {
            l["level"] == "INFO"
                && l["fields"]["message"] == "finished processing request"
                && l["fields"]["status"] == 404
                && l["span"]["uri"] == "/campaigns/01JD5Z8X7Q2M4N6P8R0S2T4V6W"
        });
    assert!(logged, "{}", String::from_utf8_lossy(&bytes));
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_seed_metrics_as_prometheus_instruments() {
    captured();
    let s = TestServer::start(&["social=error", "copy=slow:1s"]).await;
    let partial = s.submit(&example_brief()).await;
    s.wait_terminal(&partial).await;
    let cancelled = s.submit(&example_brief()).await;
    let (status, body) = s
        .post(&format!("/campaigns/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let text = s.metrics().await;
    // Mean orchestration duration, time to first artifact, audit latency: histograms in
    // seconds; failure rate per agent and cancellation rate: counters.
    for h in [
        "campaign_run_duration_seconds",
        "campaign_time_to_first_artifact_seconds",
        "campaign_audit_latency_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {h} histogram")), "{text}");
        assert!(metric(&text, &format!("{h}_count")) >= 1.0);
        assert!(metric(&text, &format!("{h}_sum")) > 0.0);
    }
    assert!(metric(&text, "campaign_agent_failures_total{agent=\"social\"}") >= 1.0);
    assert!(metric(&text, "campaign_agents_total{agent=\"social\"}") >= 2.0);
    assert!(metric(&text, "campaign_runs_total{outcome=\"partial\"}") >= 1.0);
    assert!(metric(&text, "campaign_runs_total{outcome=\"cancelled\"}") >= 1.0);
    assert!(metric(&text, "campaign_runs_started_total") >= 2.0);
    assert!(text.contains("# TYPE campaign_executions_in_flight gauge"));
}
