//! The local HTTP API (`campaign serve`): the routes of ARCHITECTURE.md, WebSocket `/ws`,
//! SSE on the events route, `/openapi.json` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use campaign_shared::adapters::local::LocalApp;
use campaign_shared::domain::{Agent, Brief, BriefError, Event, RunId, Scope};
use campaign_shared::ports::StoreError;
use campaign_shared::usecases::{self, AppError};

use crate::metrics::Metrics;

/// The OpenAPI 3.1 document of the routes, checked in next to this file.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest body the server reads at all; briefs over 64 KiB get a 413 with guidance
/// from the brief parser, anything larger a plain 413.
const READ_LIMIT: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct AppState {
    pub app: Arc<LocalApp>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/campaigns", post(create).get(list))
        .route("/campaigns/{run_id}", get(get_run))
        .route("/campaigns/{run_id}/events", get(events))
        .route("/campaigns/{run_id}/cancel", post(cancel))
        .route("/campaigns/{run_id}/retry", post(retry))
        .route("/ws", get(ws))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no such route; see /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(state)
}

/// An RFC 9457 problem response.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
    errors: Option<Value>,
}

pub fn problem(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Problem {
    Problem {
        status,
        title,
        detail: detail.into(),
        errors: None,
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        let mut r = (self.status, Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        r
    }
}

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(id) => problem(
                StatusCode::NOT_FOUND,
                "Run not found",
                format!("no run with id {id}"),
            ),
            AppError::Conflict(m) => problem(StatusCode::CONFLICT, "Conflict", m),
            AppError::Invalid(m) => problem(StatusCode::BAD_REQUEST, "Bad Request", m),
            AppError::Unavailable(m) => {
                problem(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", m)
            }
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl From<BriefError> for Problem {
    fn from(e: BriefError) -> Self {
        match e {
            BriefError::TooLarge { .. } => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Brief too large",
                e.to_string(),
            ),
            BriefError::Malformed(m) => problem(StatusCode::BAD_REQUEST, "Malformed JSON", m),
            BriefError::Invalid(v) => Problem {
                status: StatusCode::BAD_REQUEST,
                title: "Invalid brief",
                detail: format!("the brief has {} problem(s)", v.len()),
                errors: Some(json!(v)),
            },
        }
    }
}

fn parse_run_id(raw: &str) -> Result<RunId, Problem> {
    RunId::parse(raw)
        .map_err(|e| problem(StatusCode::BAD_REQUEST, "Malformed run id", e.to_string()))
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Brief too large",
                format!(
                    "request body exceeds {} KiB; a brief is at most 64 KiB and its free-text fields at most 500 characters each",
                    READ_LIMIT / 1024
                ),
            )
        } else {
            problem(StatusCode::BAD_REQUEST, "Unreadable body", e.body_text())
        }
    })
}

fn accepted(run_id: RunId) -> Response {
    let base = format!("/campaigns/{run_id}");
    let body = json!({
        "runId": run_id,
        "status": "queued",
        "links": {
            "self": base,
            "events": format!("{base}/events"),
            "cancel": format!("{base}/cancel"),
            "retry": format!("{base}/retry"),
            "ws": "/ws",
        }
    });
    let mut r = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&base) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn create(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let brief = Brief::parse(&body_bytes(body)?)?;
    let id = usecases::submit(&s.app.deps, brief, None).await?;
    Ok(accepted(id))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(q) = q.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("{e}; allowed: limit (1–100), cursor"),
        )
    })?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("limit is {limit}; allowed: 1–100"),
        ));
    }
    let page = s
        .app
        .deps
        .store
        .list_runs(limit, q.cursor.as_deref())
        .await?;
    let runs: Vec<Value> = page
        .runs
        .iter()
        .map(|r| {
            json!({
                "runId": r.run_id,
                "parentRunId": r.parent_run_id,
                "iteration": r.iteration,
                "status": r.status,
                "executionMode": r.execution_mode,
                "createdAt": r.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                "outcome": r.envelope.as_ref().map(|e| e.outcome),
                "product": r.brief.product,
            })
        })
        .collect();
    Ok(Json(json!({ "runs": runs, "nextCursor": page.next_cursor })).into_response())
}

async fn get_run(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let run = s.app.deps.store.get_run(parse_run_id(&id)?).await?;
    Ok(Json(run).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_run_id(&id)?;
    let Query(q) = q.map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "Bad query",
            format!("{e}; allowed: after (a seq, ≥ 0)"),
        )
    })?;
    let after = q.after.unwrap_or(0);
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if wants_sse {
        // Refuse an unknown run up front rather than opening an empty stream.
        s.app.deps.store.get_run(id).await?;
        let rx = subscribe(s.app.clone(), id, after);
        let stream = ReceiverStream::new(rx).map(|e| {
            SseEvent::default()
                .id(e.seq.to_string())
                .event(match e.kind {
                    campaign_shared::domain::EventType::RunStatus => "run.status",
                    campaign_shared::domain::EventType::AgentStatus => "agent.status",
                })
                .json_data(&e)
        });
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let events = s.app.deps.store.events(id, after).await?;
    let next_after = events.last().map(|e| e.seq).unwrap_or(after);
    Ok(Json(json!({ "events": events, "nextAfter": next_after })).into_response())
}

fn is_final(e: &Event) -> bool {
    e.scope == Scope::Run && e.status.is_terminal()
}

/// Live events of one run after `after`: replay from the store, then the bus, without
/// gaps or repeats; ends after the run's terminal event. Subscribes to the bus before
/// replaying, so nothing committed in between is missed.
pub fn subscribe(app: Arc<LocalApp>, run_id: RunId, after: u64) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(256);
    let mut bus = app.bus.subscribe();
    tokio::spawn(async move {
        let mut last = after;
        let replay = |last: u64| {
            let app = app.clone();
            async move {
                app.deps
                    .store
                    .events(run_id, last)
                    .await
                    .unwrap_or_default()
            }
        };
        for e in replay(last).await {
            last = e.seq;
            let done = is_final(&e);
            if tx.send(e).await.is_err() || done {
                return;
            }
        }
        loop {
            match bus.recv().await {
                Ok(e) if e.run_id == run_id && e.seq > last => {
                    // A gap means the bus outran us between replay and subscribe: fill it.
                    if e.seq > last + 1 {
                        for m in replay(last).await {
                            last = m.seq;
                            let done = is_final(&m);
                            if tx.send(m).await.is_err() || done {
                                return;
                            }
                        }
                        continue;
                    }
                    last = e.seq;
                    let done = is_final(&e);
                    if tx.send((*e).clone()).await.is_err() || done {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for m in replay(last).await {
                        last = m.seq;
                        let done = is_final(&m);
                        if tx.send(m).await.is_err() || done {
                            return;
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    rx
}

async fn cancel(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, Problem> {
    let run = usecases::cancel(&s.app.deps, parse_run_id(&id)?).await?;
    Ok(Json(run).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    agents: Option<Vec<Agent>>,
}

async fn retry(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let id = parse_run_id(&id)?;
    let body = body_bytes(body)?;
    let agents = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RetryBody>(&body)
            .map_err(|e| {
                problem(
                    StatusCode::BAD_REQUEST,
                    "Bad retry request",
                    format!("{e}; expected an empty body or {{\"agents\": [\"copy\"|\"social\"|\"visual\", …]}}"),
                )
            })?
            .agents
    };
    let new_id = usecases::retry(&s.app.deps, id, agents).await?;
    Ok(accepted(new_id))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    let body = s.metrics.render(s.app.workflow.in_flight());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn ws(State(s): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| ws_session(s, socket))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    action: String,
    #[serde(rename = "runId")]
    run_id: String,
    #[serde(default)]
    after: u64,
}

/// One WebSocket client: any number of `subscribe` messages; every event of every
/// subscribed run is pushed as its JSON object.
async fn ws_session(s: AppState, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<String>(512);
    let writer = tokio::spawn(async move {
        use futures::SinkExt;
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let text = match msg {
            Message::Text(t) => t.to_string(),
            Message::Close(_) => break,
            _ => continue,
        };
        let reply_error = |m: String| json!({ "error": m }).to_string();
        let sub: Subscribe = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                let _ = out_tx
                    .send(reply_error(format!(
                        "{e}; expected {{\"action\":\"subscribe\",\"runId\":…,\"after\":SEQ}}"
                    )))
                    .await;
                continue;
            }
        };
        if sub.action != "subscribe" {
            let _ = out_tx
                .send(reply_error(format!(
                    "unknown action `{}`; allowed: subscribe",
                    sub.action
                )))
                .await;
            continue;
        }
        let run_id = match RunId::parse(&sub.run_id) {
            Ok(id) => id,
            Err(e) => {
                let _ = out_tx.send(reply_error(e.to_string())).await;
                continue;
            }
        };
        if s.app.deps.store.get_run(run_id).await.is_err() {
            let _ = out_tx
                .send(reply_error(format!("no run with id {run_id}")))
                .await;
            continue;
        }
        let mut rx = subscribe(s.app.clone(), run_id, sub.after);
        let out = out_tx.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let Ok(text) = serde_json::to_string(&e) else {
                    continue;
                };
                if out.send(text).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
}
