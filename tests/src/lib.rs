//! Helpers for the workspace integration tests: start the real local server in process on
//! a random loopback port, talk to it over HTTP and WebSocket.
// Test support: a panic with the failed call is exactly the report a test needs.
#![allow(clippy::unwrap_used)]

pub mod aws_e2e;
pub mod aws_env;
pub mod browser;
pub mod fake_bedrock;
pub mod fault_proxy;
pub mod model_answers;
pub mod moto;
pub mod openapi;
pub use campaign_cli::runtime_api;
pub mod store_contract;

use std::net::SocketAddr;
use std::time::Duration;

use campaign_cli::Served;
use campaign_shared::adapters::faults::Faults;
use campaign_shared::runtime::local::LocalConfig;
use serde_json::{Value, json};

/// Waits in tests shrink by this factor (retry intervals, timeouts, deferred-audit delay):
/// Task timeouts become 3 s, far above what a loaded CI machine needs for a healthy step.
pub const TIME_SCALE: f64 = 0.05;

/// Logs only when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_test_writer()
            .try_init();
    }
}

/// The configuration of a test server: its SQLite file in `dir`, these `--fault` specs,
/// every wait of the flow × `time_scale`.
pub fn local_config(dir: &std::path::Path, faults: &[&str], time_scale: f64) -> LocalConfig {
    let mut f = Faults::default();
    for spec in faults {
        f.add(spec).expect("fault spec");
    }
    LocalConfig {
        db: Some(dir.join("campaign.db")),
        faults: f,
        time_scale,
        ..Default::default()
    }
}

#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub served: Served,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server on a fresh SQLite file with the given `--fault` specs.
    pub async fn start(faults: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, faults).await
    }

    pub async fn start_in(dir: tempfile::TempDir, faults: &[&str]) -> TestServer {
        Self::start_scaled(dir, faults, TIME_SCALE).await
    }

    /// A server whose flow waits `time_scale` × the real intervals and timeouts (1.0: as
    /// deployed, for tests whose agents are slow on purpose).
    pub async fn start_scaled(
        dir: tempfile::TempDir,
        faults: &[&str],
        time_scale: f64,
    ) -> TestServer {
        let cfg = local_config(dir.path(), faults, time_scale);
        Self::start_config(dir, cfg).await
    }

    /// A server with this configuration (its database in `dir`).
    pub async fn start_config(dir: tempfile::TempDir, cfg: LocalConfig) -> TestServer {
        init_logs();
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let served = campaign_cli::serve(addr, cfg).await.expect("server starts");
        TestServer {
            base: format!("http://{}", served.addr),
            served,
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a brief; returns (status, body). Every answer is checked against the OpenAPI
    /// document (see [`openapi::Spec::check_answer`]).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        Self::documented("POST", path, r).await
    }

    /// GETs `path`; returns (status, body), checked against the OpenAPI document.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("request");
        Self::documented("GET", path, r).await
    }

    /// The status and JSON body of an answer, once checked against the OpenAPI document.
    async fn documented(method: &str, path: &str, r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        openapi::Spec::shared().check_answer(method, path, status, &headers, &body);
        (status, body)
    }

    /// Submits a brief and returns the new run id.
    pub async fn submit(&self, brief: &Value) -> String {
        let (status, body) = self.post("/campaigns", brief).await;
        assert_eq!(status, 202, "submit: {body}");
        body["runId"].as_str().expect("runId").to_string()
    }

    /// Polls the run until `done` holds (or panics after 30 s).
    pub async fn wait_for(&self, run_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, run) = self.get(&format!("/campaigns/{run_id}")).await;
            if done(&run) {
                return run;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("run {run_id} never became {what}: {run:#}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_terminal(&self, run_id: &str) -> Value {
        self.wait_for(run_id, "terminal", |r| {
            matches!(
                r["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await
    }

    pub async fn events(&self, run_id: &str, after: u64) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/campaigns/{run_id}/events?after={after}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["events"].as_array().cloned().unwrap_or_default()
    }

    /// Subscribes over WebSocket and collects events until the run's terminal event.
    pub async fn ws_collect(&self, run_id: &str, after: u64) -> Vec<Value> {
        use futures::{SinkExt, StreamExt};
        let url = format!("ws://{}/ws", self.served.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let sub = json!({ "action": "subscribe", "runId": run_id, "after": after }).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::Text(sub.into()))
            .await
            .expect("ws send");
        let mut out = Vec::new();
        let deadline = Duration::from_secs(30);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(deadline, ws.next()).await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                let v: Value = serde_json::from_str(&t).expect("event json");
                assert!(v.get("error").is_none(), "ws error: {v}");
                let done = v["scope"] == "run"
                    && matches!(
                        v["status"].as_str(),
                        Some("completed" | "failed" | "cancelled")
                    );
                out.push(v);
                if done {
                    break;
                }
            }
        }
        out
    }
}

/// The example brief shipped in `examples/`.
/// `(scope, status)` of every agent event of an event log, in seq order.
pub fn agent_steps(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["scope"] != "run")
        .map(|e| {
            (
                e["scope"].as_str().unwrap_or_default().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn example_brief() -> Value {
    serde_json::from_str(include_str!("../../examples/brief.json")).expect("example brief")
}

/// The JSON `data:` payloads of a server-sent event stream's text.
pub fn sse_data(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// `(agent, artifactId)` of every agent of a run that has an artifact.
pub fn agent_artifact_ids(run: &Value) -> Vec<(String, String)> {
    ["copy", "social", "visual"]
        .iter()
        .filter_map(|a| {
            run["agents"][a]["artifactId"]
                .as_str()
                .map(|id| (a.to_string(), id.to_string()))
        })
        .collect()
}

/// Asserts the events are numbered 1..=n (or after+1..) without gaps.
pub fn assert_gapless(events: &[Value], first: u64) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["seq"].as_u64(),
            Some(first + i as u64),
            "gap or repeat at #{i}: {events:#?}"
        );
    }
}
