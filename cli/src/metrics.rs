//! `GET /metrics` of `campaign serve`: the `metrics` facade's Prometheus recorder, where the
//! use cases record the seed's metrics (`campaign_shared::observe`) as runs change — the
//! same instruments the Lambdas emit as CloudWatch EMF lines. Nothing is sampled from the
//! event bus, so a lagging subscriber cannot lose a count.

use std::sync::OnceLock;

use campaign_shared::observe;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Executions running in this process now (set when scraped).
pub const IN_FLIGHT: &str = "campaign_executions_in_flight";

/// The process's recorder, installed on first use (the facade has one per process, so
/// every server of a test process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = [
            observe::RUN_DURATION,
            observe::TIME_TO_FIRST_ARTIFACT,
            observe::AUDIT_LATENCY,
            observe::MODEL_FIRST_TOKEN,
            observe::MODEL_LATENCY,
        ]
        .into_iter()
        .fold(builder, |b, name| {
            b.set_buckets_for_metric(Matcher::Full(name.to_string()), observe::DURATION_BUCKETS)
                .unwrap_or_else(|e| panic!("buckets of {name}: {e}"))
        });
        let handle = match builder.install_recorder() {
            Ok(h) => h,
            // Another recorder is installed (a test process that set its own): render an
            // unattached one rather than fail the server.
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        observe::describe();
        metrics::describe_gauge!(IN_FLIGHT, "Executions running in this process now.");
        handle
    })
}

/// The Prometheus text exposition, with the in-flight gauge set to `in_flight`.
pub fn render(in_flight: usize) -> String {
    let handle = handle();
    metrics::gauge!(IN_FLIGHT).set(in_flight as f64);
    handle.render()
}
