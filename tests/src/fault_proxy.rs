//! A loopback proxy in front of moto that answers scripted DynamoDB faults in the real wire
//! format (`TransactionCanceledException` with its cancellation reasons, as DynamoDB sends
//! it), and forwards everything else. moto never reports a `TransactionConflict`; with this,
//! the store's handling of one is tested through the real SDK against the real emulator.
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
    if target.ends_with(".TransactWriteItems") {
        s.transactions
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        let scripted = s.script.lock().unwrap().pop_front();
        if let Some(code) = scripted {
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
            let mut r = (StatusCode::BAD_REQUEST, doc.to_string()).into_response();
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            r.headers_mut()
                .insert("x-amzn-requestid", HeaderValue::from_static("fault-proxy"));
            return r;
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

impl FaultProxy {
    /// A proxy to `upstream` answering the first TransactWriteItems requests with a
    /// cancellation for each code of `script` (e.g. `TransactionConflict`).
    pub async fn start(upstream: &str, script: &[&'static str]) -> FaultProxy {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            transactions: Arc::default(),
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

    /// A DynamoDB client of `sdk` that talks to moto through this proxy.
    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }
}
