//! The AWS deployment on emulators, end to end, with the real function binaries and the
//! real `statemachine.asl.json`:
//!
//! * moto executes the state machine; each Lambda Task calls the Lambda Invoke API, which
//!   moto sends to `MOTO_PORT` — here an Invoke API of this harness, answering as AWS does
//!   (a function error is HTTP 200 with `X-Amz-Function-Error: Unhandled`; a function ARN
//!   is accepted as the name);
//! * each invocation is handed to the function's real binary through a Lambda Runtime API
//!   served on loopback (one process per function, spawned like Lambda would);
//! * DynamoDB, SQS and Step Functions calls of every binary go to moto, through a proxy
//!   that gives moto DynamoDB's transaction isolation (see [`FaultProxy`]);
//! * the WebSocket API's management endpoint (`POST /STAGE/@connections/ID`) is served here
//!   and records what was pushed to each connection;
//! * what AWS would deliver by itself — EventBridge status changes, SQS event source
//!   mappings — the harness delivers: it reads the execution's status and invokes
//!   `execution-events`, drains the queues and invokes `notifier` / `deferred-audit`.
//!
//! A test fixture, never shipped.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::aws_env::{AwsEnv, Options};
use crate::fault_proxy::FaultProxy;
use crate::moto;
use crate::runtime_api::{Outcome, RuntimeApi, binary, spawn_function_logging_to};

/// The binaries of the template, and the function name each Task resource resolves to
/// (the names [`crate::aws_env::substituted_definition`] writes into the ARNs).
pub const BINARIES: &[(&str, Option<&str>)] = &[
    ("api", None),
    ("copy-agent", Some("CopyAgentFunction")),
    ("social-agent", Some("SocialAgentFunction")),
    ("visual-agent", Some("VisualAgentFunction")),
    ("audit", Some("AuditFunction")),
    ("finalize", Some("FinalizeFunction")),
    ("notifier", None),
    ("ws", None),
    ("execution-events", None),
    ("trigger", None),
    ("deferred-audit", None),
    ("sweeper", None),
];

pub const STAGE: &str = "prod";

/// The Runtime APIs of the current deployment's functions, by function name.
type Routes = Arc<Mutex<HashMap<String, Arc<RuntimeApi>>>>;

/// Process-wide: the Invoke API moto calls and the WebSocket management API.
struct Cloud {
    routes: Routes,
    pushes: Pushes,
    management: SocketAddr,
}

/// What was pushed to each connection, in order; connections not in the map are gone.
type Pushes = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

static CLOUD: OnceCell<Cloud> = OnceCell::const_new();

async fn invoke_api(
    State(routes): State<Routes>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    // `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` or a plain name.
    let name = match name.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", n, ..] => n.to_string(),
        _ => name,
    };
    let Some(function) = routes.lock().unwrap().get(&name).cloned() else {
        let body = json!({ "Type": "User", "message": format!("Function not found: {name}") });
        let mut r = (StatusCode::NOT_FOUND, body.to_string()).into_response();
        r.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static("ResourceNotFoundException"),
        );
        return r;
    };
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let outcome = function.invoke(payload).await;
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amz-executed-version",
        HeaderValue::from_static("$LATEST"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let body = match outcome {
        Outcome::Response(v) => v,
        Outcome::Error { body, .. } => {
            headers.insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            body
        }
    };
    (StatusCode::OK, headers, body.to_string()).into_response()
}

async fn post_to_connection(
    State(pushes): State<Pushes>,
    Path((_stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let mut pushes = pushes.lock().unwrap();
    match pushes.get_mut(&id) {
        Some(list) => {
            list.push(String::from_utf8_lossy(&body).into_owned());
            StatusCode::OK.into_response()
        }
        None => {
            let mut r = (
                StatusCode::GONE,
                json!({ "message": format!("connection {id} is gone") }).to_string(),
            )
                .into_response();
            r.headers_mut().insert(
                "x-amzn-errortype",
                HeaderValue::from_static("GoneException"),
            );
            r
        }
    }
}

/// The process-wide servers outlive any one test's runtime: they run on their own.
fn background() -> &'static tokio::runtime::Handle {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        std::thread::spawn(move || rt.block_on(std::future::pending::<()>()));
        handle
    })
}

fn serve(app: Router) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    background().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn cloud() -> &'static Cloud {
    CLOUD
        .get_or_init(|| async {
            let routes: Routes = Arc::default();
            let invoke = serve(
                Router::new()
                    .route("/2015-03-31/functions/{name}/invocations", post(invoke_api))
                    .with_state(routes.clone()),
            );
            let pushes: Pushes = Arc::default();
            let management = serve(
                Router::new()
                    .route("/{stage}/@connections/{id}", post(post_to_connection))
                    .with_state(pushes.clone()),
            );
            moto::route_lambda_to(invoke.port());
            Cloud {
                routes,
                pushes,
                management,
            }
        })
        .await
}

/// One function's running binary.
struct Function {
    api: Arc<RuntimeApi>,
    child: Child,
}

/// A deployment: the AWS environment on moto and every function binary running against it.
/// Holds moto exclusively until dropped.
pub struct Deployment {
    pub env: AwsEnv,
    proxy: FaultProxy,
    functions: HashMap<&'static str, Function>,
    cloud: &'static Cloud,
    /// Each function's stdout (`<binary>.log`): its logs, in Lambda's JSON format at INFO
    /// (as the template's `LoggingConfig` sets them), and its EMF metrics.
    logs: tempfile::TempDir,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment").finish_non_exhaustive()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.cloud.routes.lock().unwrap().clear();
        for f in self.functions.values_mut() {
            let _ = f.child.kill();
            let _ = f.child.wait();
        }
    }
}

impl Deployment {
    /// Deploys every function; `faults` sets `CAMPAIGN_FAULTS` on the named binaries.
    pub async fn start(faults: &[(&str, &str)]) -> Deployment {
        crate::init_logs();
        let cloud = cloud().await;
        let env = AwsEnv::start_with(Options {
            execute: true,
            fifo_status: true,
        })
        .await;
        cloud.pushes.lock().unwrap().clear();
        let proxy = FaultProxy::start(&env.moto.endpoint, &[]).await;
        let mut d = Deployment {
            env,
            proxy,
            functions: HashMap::new(),
            cloud,
            logs: tempfile::tempdir().unwrap(),
        };
        for (name, _) in BINARIES {
            let spec = faults.iter().find(|(b, _)| b == name).map(|(_, s)| *s);
            d.deploy(name, spec).await;
        }
        d
    }

    /// (Re)deploys one binary, with `faults` as its `CAMPAIGN_FAULTS`.
    pub async fn deploy(&mut self, name: &'static str, faults: Option<&str>) {
        self.deploy_with(name, faults, &[]).await
    }

    /// (Re)deploys one binary with `faults` and more environment variables (e.g. a
    /// Bedrock model id and endpoint).
    pub async fn deploy_with(
        &mut self,
        name: &'static str,
        faults: Option<&str>,
        extra: &[(&str, &str)],
    ) {
        if let Some(mut old) = self.functions.remove(name) {
            let _ = old.child.kill();
            let _ = old.child.wait();
        }
        let api = Arc::new(RuntimeApi::start().await);
        let mut env = self.env.function_env(&self.websocket_endpoint());
        env.push(("AWS_ENDPOINT_URL".into(), self.proxy.endpoint.clone()));
        if let Some(spec) = faults {
            env.push(("CAMPAIGN_FAULTS".into(), spec.into()));
        }
        // Lambda's advanced logging controls, as the template sets them; an empty
        // RUST_LOG leaves the level to AWS_LAMBDA_LOG_LEVEL.
        for (k, v) in [
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            ("RUST_LOG", ""),
        ] {
            env.push((k.into(), v.into()));
        }
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.path().join(format!("{name}.log")))
            .unwrap();
        let child = spawn_function_logging_to(&binary(name), &api, &env, log.into());
        let function_name = BINARIES
            .iter()
            .find(|(b, _)| *b == name)
            .and_then(|(_, f)| *f);
        if let Some(f) = function_name {
            self.cloud
                .routes
                .lock()
                .unwrap()
                .insert(f.to_string(), api.clone());
        }
        self.functions.insert(name, Function { api, child });
    }

    /// The use cases' dependencies as the functions wire them, over this deployment.
    pub fn deps(&self) -> campaign_shared::ports::Deps {
        let store = campaign_shared::adapters::aws::dynamodb::DynamoStore::new(
            self.proxy.dynamodb(&self.env.sdk),
            crate::aws_env::TABLE,
        );
        campaign_shared::ports::Deps {
            store: Arc::new(store.clone()),
            keys: Arc::new(store.clone()),
            brands: Arc::new(store),
            ..self.env.deps.clone()
        }
    }

    /// Every line the functions wrote to stdout so far that is a JSON object, with the
    /// binary that wrote it.
    pub fn log_lines(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.logs.path()).unwrap() {
            let path = entry.unwrap().path();
            let binary = path.file_stem().unwrap().to_string_lossy().to_string();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line) {
                    out.push((binary.clone(), v));
                }
            }
        }
        out
    }

    /// The `transition` log lines of run `id`, from every function.
    pub fn transition_lines(&self, id: &str) -> Vec<Value> {
        self.log_lines()
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| l["fields"]["message"] == "transition" && l["fields"]["run_id"] == id)
            .collect()
    }

    pub fn websocket_endpoint(&self) -> String {
        format!("http://{}/{STAGE}", self.cloud.management)
    }

    /// The URL the `api` function gives clients as `links.ws`.
    pub fn websocket_url(&self) -> String {
        self.websocket_endpoint().replacen("http", "ws", 1)
    }

    /// Invokes a binary directly (as API Gateway, EventBridge or an SQS mapping would).
    pub async fn invoke(&self, name: &str, event: Value) -> Outcome {
        let f = self
            .functions
            .get(name)
            .unwrap_or_else(|| panic!("no function {name}"));
        f.api.invoke(event).await
    }

    /// An HTTP API (payload v2) request through the `api` binary: (status, JSON body).
    /// A request through the `api` binary as API Gateway (payload v2) delivers it: the
    /// status and the body parsed as JSON (`Null` when it is not).
    pub async fn http(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let r = self.http_response(method, path, body).await;
        let status = r["statusCode"].as_u64().unwrap_or_default() as u16;
        let text = r["body"].as_str().unwrap_or_default();
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }

    /// The whole API Gateway response (`statusCode`, `headers`, `body`) of a request.
    pub async fn http_response(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
        let event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": query,
            "headers": {
                "accept": "application/json",
                "content-type": "application/json",
                "host": "api.execute-api.us-east-1.amazonaws.com",
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.execute-api.us-east-1.amazonaws.com",
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "203.0.113.10",
                    "userAgent": "e2e"
                },
                "requestId": ulid::Ulid::new().to_string(),
                "routeKey": "$default",
                "stage": "$default",
                "time": "01/Dec/2026:00:00:00 +0000",
                "timeEpoch": 1_795_996_800_000u64
            },
            "body": body.map(|b| b.to_string()),
            "isBase64Encoded": false
        });
        let r = match self.invoke("api", event).await {
            Outcome::Response(r) => r,
            other => panic!("api failed: {other:?}"),
        };
        // Every answer of the api function is one the OpenAPI document describes.
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in r["headers"].as_object().into_iter().flatten() {
            if let (Ok(k), Some(Ok(v))) = (
                reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(reqwest::header::HeaderValue::from_str),
            ) {
                headers.insert(k, v);
            }
        }
        let status = r["statusCode"].as_u64().unwrap_or_default() as u16;
        let body =
            serde_json::from_str(r["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
        crate::openapi::Spec::shared().check_answer(method, path, status, &headers, &body);
        r
    }

    /// DescribeExecution of the run's execution.
    async fn describe(
        &self,
        run_id: &str,
    ) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        self.env
            .sfn
            .describe_execution()
            .execution_arn(self.execution_arn(run_id))
            .send()
            .await
            .unwrap()
    }

    /// The ARN of the run's execution (named by the run id).
    pub fn execution_arn(&self, run_id: &str) -> String {
        format!(
            "{}:{run_id}",
            self.env
                .state_machine_arn
                .replacen(":stateMachine:", ":execution:", 1)
        )
    }

    /// A stop from the console: StopExecution, nothing through the API and no status-change
    /// event delivered (the caller decides whether to deliver it).
    pub async fn stop_from_console(&self, run_id: &str) {
        self.env
            .sfn
            .stop_execution()
            .execution_arn(self.execution_arn(run_id))
            .cause("stopped from the console")
            .send()
            .await
            .unwrap();
    }

    /// Waits (up to `limit`) until the run's execution is no longer running; its status
    /// (`FAILED` followed by the execution's error name).
    pub async fn execution_end(&self, run_id: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let out = self.describe(run_id).await;
            let status = out.status.as_str().to_string();
            if status == "FAILED" {
                // What failed it, for the assertion that will follow.
                return format!("FAILED {}", out.error.as_deref().unwrap_or_default());
            }
            if status != "RUNNING" {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "execution {run_id} still RUNNING after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The "Step Functions Execution Status Change" event EventBridge would deliver for the
    /// run's execution as it is now, handed to `execution-events`.
    pub async fn deliver_status_change(&self, run_id: &str) -> Outcome {
        let arn = self.execution_arn(run_id);
        let out = self.describe(run_id).await;
        let event = json!({
            "version": "0",
            "id": ulid::Ulid::new().to_string(),
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2026-12-01T00:00:00Z",
            "region": "us-east-1",
            "resources": [arn],
            "detail": {
                "executionArn": arn,
                "stateMachineArn": self.env.state_machine_arn,
                "name": run_id,
                "status": out.status.as_str(),
                "error": out.error,
                "cause": out.cause,
            }
        });
        self.invoke("execution-events", event).await
    }

    /// Receives what is on `queue_url` now (up to `wait`), as the records of one SQS event.
    async fn receive(&self, queue_url: &str, wait: Duration) -> Vec<(Value, String)> {
        let out = self
            .env
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), Value::String(v)))
                    .collect();
                let receipt = m.receipt_handle.clone().unwrap_or_default();
                let record = json!({
                    "messageId": m.message_id,
                    "receiptHandle": receipt,
                    "body": m.body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
                    "awsRegion": "us-east-1"
                });
                (record, receipt)
            })
            .collect()
    }

    /// Feeds `queue_url` to the `consumer` binary as an SQS event source mapping with
    /// `ReportBatchItemFailures` would: messages it reports failed become visible again,
    /// the others are deleted. Returns how many messages were consumed for good.
    async fn pump(&self, queue_url: &str, consumer: &str, wait: Duration) -> usize {
        let mut done = 0;
        loop {
            let batch = self.receive(queue_url, wait).await;
            if batch.is_empty() {
                return done;
            }
            let records: Vec<Value> = batch.iter().map(|(r, _)| r.clone()).collect();
            let out = self.invoke(consumer, json!({ "Records": records })).await;
            let Outcome::Response(resp) = out else {
                panic!("{consumer} failed: {out:?}")
            };
            let failed: Vec<&str> = resp["batchItemFailures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["itemIdentifier"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for (record, receipt) in &batch {
                let id = record["messageId"].as_str().unwrap_or_default();
                if failed.contains(&id) {
                    self.env
                        .sqs
                        .change_message_visibility()
                        .queue_url(queue_url)
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                } else {
                    done += 1;
                    self.env
                        .sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .unwrap();
                }
            }
            if !failed.is_empty() {
                return done;
            }
        }
    }

    /// The status queue fed to `notifier` until it is empty.
    pub async fn pump_status_events(&self) -> usize {
        let url = self.env.status_queue_url.clone();
        self.pump(&url, "notifier", Duration::ZERO).await
    }

    /// The deferred-audit queue fed to `deferred-audit`, waiting up to `wait` for a message
    /// (the finalize step enqueues with a delay).
    pub async fn pump_deferred_audits(&self, wait: Duration) -> usize {
        let url = self.env.deferred_queue_url.clone();
        let deadline = Instant::now() + wait;
        loop {
            let n = self
                .pump(&url, "deferred-audit", Duration::from_secs(1))
                .await;
            if n > 0 || Instant::now() >= deadline {
                return n;
            }
        }
    }

    /// Opens a WebSocket connection at the management API and runs `$connect` through the
    /// `ws` binary.
    pub async fn connect(&self, connection_id: &str) {
        self.cloud
            .pushes
            .lock()
            .unwrap()
            .insert(connection_id.to_string(), Vec::new());
        let out = self
            .invoke("ws", websocket_event(connection_id, "$connect", None))
            .await;
        assert!(
            matches!(&out, Outcome::Response(r) if r["statusCode"] == 200),
            "{out:?}"
        );
    }

    /// Sends `{"action":"subscribe",…}` on the connection through the `ws` binary.
    pub async fn subscribe(&self, connection_id: &str, run_id: &str, after: u64) -> Outcome {
        let body = json!({ "action": "subscribe", "runId": run_id, "after": after });
        self.invoke(
            "ws",
            websocket_event(connection_id, "subscribe", Some(body.to_string())),
        )
        .await
    }

    /// The client goes away: API Gateway answers 410 Gone for the connection from now on.
    pub fn disconnect_at_gateway(&self, connection_id: &str) {
        self.cloud.pushes.lock().unwrap().remove(connection_id);
    }

    /// What was pushed to the connection so far.
    pub fn pushed(&self, connection_id: &str) -> Vec<Value> {
        self.cloud
            .pushes
            .lock()
            .unwrap()
            .get(connection_id)
            .map(|l| {
                l.iter()
                    .map(|m| serde_json::from_str(m).unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn websocket_event(connection_id: &str, route: &str, body: Option<String>) -> Value {
    json!({
        "requestContext": {
            "routeKey": route,
            "eventType": if route == "$connect" { "CONNECT" } else { "MESSAGE" },
            "extendedRequestId": "e2e",
            "requestTime": "01/Dec/2026:00:00:00 +0000",
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": 1_795_996_800_000u64,
            "requestTimeEpoch": 1_795_996_800_000u64,
            "identity": { "sourceIp": "203.0.113.10" },
            "requestId": ulid::Ulid::new().to_string(),
            "domainName": "ws.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "ws"
        },
        "isBase64Encoded": false,
        "body": body
    })
}
