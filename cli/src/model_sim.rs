//! A simulated model behind an OpenAI-compatible API (`POST /v1/chat/completions`,
//! streamed as server-sent events), answering each agent of the example brief with a
//! valid answer at a model's pace: the first token after a delay, then a steady rate of
//! tokens. The bench measures time to first artifact against it; the tests' fakes answer
//! with the same texts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};

/// The copy agent's answer.
pub const GOOD_COPY: &str = r#"{"headline": "Ride Aurora this spring", "body": "Aurora makes the commute lighter: book a test ride and feel the difference on your own streets.", "callToAction": "Book a test ride"}"#;

/// The social agent's answer: one post per network, in order.
pub const GOOD_SOCIAL: &str = r##"{"posts": [
    {"network": "x", "text": "Aurora is here. Book a test ride #AuroraEBike", "hashtags": ["#AuroraEBike"]},
    {"network": "linkedin", "text": "Meet Aurora, built for your commute. #AuroraEBike", "hashtags": ["#AuroraEBike"]},
    {"network": "instagram", "text": "Spring rides start here #AuroraEBike #Spring", "hashtags": ["#AuroraEBike", "#Spring"]}]}"##;

/// The visual agent's answer.
pub const GOOD_VISUAL: &str = r#"{"headline": "Ride into spring", "subheadline": "Aurora e-bike", "layout": "Centered headline over a duotone street scene.", "imagery": "A commuter on an Aurora at dawn.", "typography": "Bold geometric sans-serif."}"#;

/// The good answer for whichever agent `ask` (the user prompt) comes from.
pub fn by_agent(ask: &str) -> &'static str {
    if ask.contains("long-form campaign copy") {
        GOOD_COPY
    } else if ask.contains("social post") {
        GOOD_SOCIAL
    } else {
        GOOD_VISUAL
    }
}

/// A model's pace.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Request to first content token.
    pub first_token: Duration,
    /// Then this many tokens a second (a token taken as 4 characters).
    pub tokens_per_s: f64,
}

impl Pace {
    /// A hosted model's typical pace: first token after 400 ms, then 40 tokens/s.
    pub const REALISTIC: Pace = Pace {
        first_token: Duration::from_millis(400),
        tokens_per_s: 40.0,
    };
}

fn chunk(delta: Value, finish: Value) -> Bytes {
    Bytes::from(format!(
        "data: {}\n\n",
        json!({"id": "sim", "object": "chat.completion.chunk", "model": "sim",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    ))
}

async fn completions(State(pace): State<Pace>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ask = request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let text: Vec<char> = by_agent(&ask).chars().collect();
    let tokens: Vec<String> = text.chunks(4).map(|c| c.iter().collect()).collect();
    let n = tokens.len() as u64;
    let gap = Duration::from_secs_f64(1.0 / pace.tokens_per_s);
    let head = futures::stream::once(async {
        chunk(json!({"role": "assistant", "content": ""}), Value::Null)
    });
    let body =
        futures::stream::iter(tokens.into_iter().enumerate()).then(move |(i, t)| async move {
            tokio::time::sleep(if i == 0 { pace.first_token } else { gap }).await;
            chunk(json!({"content": t}), Value::Null)
        });
    let tail = futures::stream::iter([
        chunk(json!({}), json!("stop")),
        Bytes::from(format!(
            "data: {}\n\ndata: [DONE]\n\n",
            json!({"id": "sim", "object": "chat.completion.chunk", "choices": [],
                   "usage": {"prompt_tokens": 400, "completion_tokens": n, "total_tokens": 400 + n}})
        )),
    ]);
    let stream = head.chain(body).chain(tail).map(Ok::<_, Infallible>);
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Serves the simulated model on a loopback port; returns the base URL (up to `/v1`).
pub async fn serve(pace: Pace) -> std::io::Result<String> {
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(pace);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v1"))
}
