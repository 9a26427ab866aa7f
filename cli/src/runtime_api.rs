//! A Lambda Runtime API served on loopback, so the deployable function binaries run here
//! exactly as in Lambda: the binary polls `next`, handles the event, posts a response or
//! an error with its `errorType`. Used by the binary tests and by `campaign bench` (cold
//! start: exec → first `next`).

#![allow(clippy::unwrap_used)] // a test harness: a poisoned lock or bad header is a bug to surface

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

/// What the function answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error { error_type: String, body: Value },
}

#[derive(Default)]
struct Inner {
    pending: VecDeque<(String, Value)>,
    outcomes: HashMap<String, Outcome>,
    first_next_at: Option<Instant>,
    init_error: Option<Value>,
}

#[derive(Clone, Default)]
struct Shared {
    counter: Arc<std::sync::atomic::AtomicU64>,
    inner: Arc<Mutex<Inner>>,
    queued: Arc<Notify>,
    answered: Arc<Notify>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("addr", &self.addr)
            .finish()
    }
}

async fn next(State(s): State<Shared>) -> Response {
    loop {
        let notified = s.queued.notified();
        {
            let mut inner = s.inner.lock().unwrap();
            inner.first_next_at.get_or_insert_with(Instant::now);
            if let Some((id, event)) = inner.pending.pop_front() {
                let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis();
                let mut h = HeaderMap::new();
                h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                h.insert(
                    "lambda-runtime-deadline-ms",
                    deadline.to_string().parse().unwrap(),
                );
                h.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:test"
                        .parse()
                        .unwrap(),
                );
                h.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
                        .parse()
                        .unwrap(),
                );
                return (StatusCode::OK, h, event.to_string()).into_response();
            }
        }
        notified.await;
    }
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.inner
        .lock()
        .unwrap()
        .outcomes
        .insert(id, Outcome::Response(v));
    s.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn error(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let error_type = v["errorType"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    s.inner.lock().unwrap().outcomes.insert(
        id,
        Outcome::Error {
            error_type,
            body: v,
        },
    );
    s.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<Shared>, body: Bytes) -> StatusCode {
    s.inner.lock().unwrap().init_error = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
    s.answered.notify_waiters();
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            shared,
            server,
        }
    }

    /// Queues an event and waits (up to 30 s) for the function's answer.
    pub async fn invoke(&self, event: Value) -> Outcome {
        let id = format!(
            "req-{}",
            self.shared
                .counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.shared
            .inner
            .lock()
            .unwrap()
            .pending
            .push_back((id.clone(), event));
        self.shared.queued.notify_waiters();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = self.shared.answered.notified();
            if let Some(o) = self.shared.inner.lock().unwrap().outcomes.remove(&id) {
                return o;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the function did not answer within 30 s");
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), answered).await;
        }
    }

    /// When the function first asked for work (its cold start ended).
    pub fn first_next_at(&self) -> Option<Instant> {
        self.shared.inner.lock().unwrap().first_next_at
    }

    pub fn init_error(&self) -> Option<Value> {
        self.shared.inner.lock().unwrap().init_error.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A built binary of this workspace, up to date: plain `cargo test` builds only test
/// targets, so the first call of a test process runs `cargo build --workspace --bins` (a
/// no-op when `scripts/test.sh` built them already; cargo no longer holds the target
/// directory's lock while tests run).
pub fn binary(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let built = BUILT.get_or_init(|| {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--workspace", "--bins", "--quiet"])
            .current_dir(workspace);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("`cargo build --workspace --bins` failed: {s}")),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not a binary of this workspace",
        bin.display()
    );
    bin
}

/// Spawns a function binary against `api` with the Lambda environment and `env`.
pub fn spawn_function(path: &std::path::Path, api: &RuntimeApi, env: &[(String, String)]) -> Child {
    spawn_function_logging_to(path, api, env, Stdio::null())
}

/// [`spawn_function`] with the function's stdout (its logs and EMF metrics) sent to `stdout`.
pub fn spawn_function_logging_to(
    path: &std::path::Path,
    api: &RuntimeApi,
    env: &[(String, String)],
    stdout: Stdio,
) -> Child {
    let mut cmd = Command::new(path);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", path.file_name().unwrap())
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("RUST_LOG", "warn")
        .stdout(stdout)
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}
