//! A loopback proxy in front of moto that answers scripted DynamoDB faults in the real wire
//! format (`TransactionCanceledException` with its cancellation reasons, as DynamoDB sends
//! it), and forwards everything else. moto never reports a `TransactionConflict`; with this,
//! the store's handling of one is tested through the real SDK against the real emulator.
//!
//! The script code `LostAnswer` forwards the transaction (moto commits it) and then holds
//! the answer for 2 s before a 500 — a reply lost on the way back, which a client with a
//! shorter attempt timeout sees as no answer at all; like DynamoDB, the proxy answers a
//! `TransactWriteItems` whose `ClientRequestToken` it already forwarded with success without
//! applying it again (moto ignores the token). Every DynamoDB request is recorded (operation
//! and body), so tests can check how the store reads.
//!
//! It also gives moto the isolation DynamoDB has: moto applies a `TransactWriteItems` by
//! snapshotting the whole table and restoring the snapshot when a condition fails, so a
//! write another client made in between is silently lost (seen as a missing event `seq`
//! when three agent processes write one run). The proxy forwards DynamoDB requests one at a
//! time, which is what DynamoDB's serializable transactions guarantee.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    /// Cancellation reason codes to answer, one per TransactWriteItems, in order.
    script: Arc<Mutex<VecDeque<&'static str>>>,
    /// Every TransactWriteItems request body seen (faulted or forwarded).
    transactions: Arc<Mutex<Vec<Value>>>,
    /// Every DynamoDB request seen: operation (`Query`, `GetItem`, …) and body.
    requests: Arc<Mutex<Vec<(String, Value)>>>,
    /// Tokens of the transactions forwarded to moto.
    applied_tokens: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Held while a DynamoDB request is at moto.
    dynamodb: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone)]
pub struct FaultProxy {
    pub endpoint: String,
    shared: Shared,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

async fn handle(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some((_, op)) = target.split_once('.') {
        s.requests
            .lock()
            .unwrap()
            .push((op.to_string(), parsed.clone()));
    }
    let mut lose_answer = false;
    if target.ends_with(".TransactWriteItems") {
        s.transactions.lock().unwrap().push(parsed.clone());
        let token = parsed["ClientRequestToken"].as_str().map(str::to_string);
        if let Some(t) = &token
            && s.applied_tokens.lock().unwrap().contains(t)
        {
            // DynamoDB: the same token again is answered as the first, not applied twice.
            return json_answer(StatusCode::OK, json!({}));
        }
        let scripted = s.script.lock().unwrap().pop_front();
        if scripted == Some("LostAnswer") {
            lose_answer = true;
        } else if let Some(code) = scripted {
            let doc = json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [None, {code}]"
                ),
                "CancellationReasons": [
                    { "Code": "None" },
                    { "Code": code, "Message": "scripted by the test" }
                ]
            });
            return json_answer(StatusCode::BAD_REQUEST, doc);
        }
    }
    let _one_at_a_time = if target.starts_with("DynamoDB_") {
        Some(s.dynamodb.lock().await)
    } else {
        None
    };
    let url = format!(
        "{}{}",
        s.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = s.http.request(method, url).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success()
                && let Some(t) = parsed["ClientRequestToken"].as_str()
            {
                s.applied_tokens.lock().unwrap().insert(t.to_string());
            }
            if lose_answer {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                return json_answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                        "message": "scripted by the test: the answer was lost"
                    }),
                );
            }
            let mut out = HeaderMap::new();
            for (k, v) in resp.headers() {
                if k != "content-length" && k != "transfer-encoding" {
                    out.insert(k.clone(), v.clone());
                }
            }
            let body = resp.bytes().await.unwrap_or_default();
            (status, out, body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// A DynamoDB JSON answer.
fn json_answer(status: StatusCode, doc: Value) -> Response {
    let mut r = (status, doc.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r.headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("fault-proxy"));
    r
}

impl FaultProxy {
    /// A proxy to `upstream` answering the first TransactWriteItems requests with a
    /// cancellation for each code of `script` (e.g. `TransactionConflict`).
    pub async fn start(upstream: &str, script: &[&'static str]) -> FaultProxy {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            transactions: Arc::default(),
            requests: Arc::default(),
            applied_tokens: Arc::default(),
            dynamodb: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { endpoint, shared }
    }

    /// Scripted faults not served yet.
    pub fn faults_left(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }

    /// Every TransactWriteItems request body the proxy saw.
    pub fn transactions(&self) -> Vec<Value> {
        self.shared.transactions.lock().unwrap().clone()
    }

    /// Every DynamoDB request the proxy saw: operation and body.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// A DynamoDB client of `sdk` that talks to moto through this proxy.
    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }
}
