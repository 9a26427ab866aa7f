//! The local server (`campaign serve`): the shared HTTP API, plus what only local mode
//! has — WebSocket `/ws`, the SSE feed behind the events route, and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use campaign_shared::domain::{Event, RunId, Scope};
use campaign_shared::http::{self, ApiState, LiveEvents};
use campaign_shared::runtime::local::LocalApp;

#[derive(Clone, Debug)]
pub struct AppState {
    pub app: Arc<LocalApp>,
}

/// SSE and WebSocket feeds come from the in-process bus and the store.
struct LocalLive {
    app: Arc<LocalApp>,
}

impl LiveEvents for LocalLive {
    fn subscribe(&self, run_id: RunId, after: u64) -> mpsc::Receiver<Event> {
        subscribe(self.app.clone(), run_id, after)
    }
}

pub fn router(state: AppState) -> Router {
    let api = http::router(ApiState {
        deps: state.app.deps.clone(),
        live: Some(Arc::new(LocalLive {
            app: state.app.clone(),
        })),
        ws_url: "/ws".into(),
        admission: Some(state.app.admission.clone()),
    });
    Router::new()
        .route("/ws", get(ws))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(api)
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

async fn metrics(State(s): State<AppState>) -> Response {
    let body = crate::metrics::render(s.app.workflow.in_flight());
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
