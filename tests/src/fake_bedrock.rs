//! A loopback Amazon Bedrock Runtime that answers like the real service, for the Bedrock
//! generator's tests: `POST /model/{modelId}/converse` (JSON) and
//! `POST /model/{modelId}/converse-stream` (`application/vnd.amazon.eventstream`, each
//! event a binary event-stream message with its CRCs, framed by `aws-smithy-eventstream`),
//! errors as restJson1 documents with `x-amzn-ErrorType`, stream failures as exception
//! messages. The real SDK is pointed at it with an endpoint override; nothing is mocked.
//!
//! Each request takes the next scripted [`Reply`]; unscripted requests get a good answer
//! for whichever agent asks (the flow runs them in any order).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::model_answers;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Streams (or returns) this text, then stop reason `end_turn` and usage.
    Answer(String),
    /// Like `Answer`, with the first token after this delay.
    SlowFirstToken(Duration, String),
    /// An HTTP error before any event: status and Bedrock error type
    /// (`ThrottlingException`, `ValidationException`, ...).
    Error(u16, &'static str),
    /// Starts streaming this text, then an exception event of this type
    /// (`throttlingException`, `modelStreamErrorException`, ...).
    StreamException(String, &'static str),
    /// Starts streaming this text, then closes the connection.
    Cut(String),
    /// Bytes that are not an event-stream message.
    Garbage,
    /// Stops with this reason (`content_filtered`, `guardrail_intervened`) and no text.
    Stop(&'static str),
}

/// What the fake was sent.
#[derive(Debug, Clone)]
pub struct Request {
    pub model: String,
    pub streaming: bool,
    /// The `authorization` header (SigV4 from the SDK).
    pub authorization: String,
    pub body: Value,
}

/// The fake's script and what it received.
#[derive(Debug, Clone, Default)]
pub struct FakeBedrock {
    pub script: Arc<Mutex<VecDeque<Reply>>>,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

pub const INPUT_TOKENS: i64 = 512;
pub const OUTPUT_TOKENS: i64 = 128;

fn event(kind: &str, payload: Value) -> Vec<u8> {
    frame(Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("event".into())),
            Header::new(":event-type", HeaderValue::String(kind.to_owned().into())),
            Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        payload.to_string().into_bytes(),
    ))
}

fn exception(kind: &str) -> Vec<u8> {
    frame(Message::new_from_parts(
        vec![
            Header::new(":message-type", HeaderValue::String("exception".into())),
            Header::new(
                ":exception-type",
                HeaderValue::String(kind.to_owned().into()),
            ),
            Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ),
        ],
        json!({"message": format!("scripted {kind}")})
            .to_string()
            .into_bytes(),
    ))
}

fn frame(m: Message) -> Vec<u8> {
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut out).unwrap();
    out
}

fn deltas(text: &str) -> Vec<Vec<u8>> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(9)
        .map(|piece| {
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": piece.iter().collect::<String>()}}),
            )
        })
        .collect()
}

fn opening() -> Vec<Vec<u8>> {
    vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"text": ""}}),
        ),
    ]
}

fn closing(stop: &str) -> Vec<Vec<u8>> {
    vec![
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": stop})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS,
                             "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS},
                   "metrics": {"latencyMs": 420}}),
        ),
    ]
}

/// The response body: frames sent one by one, the first after `first` (a model's time to
/// first token), then each after a few milliseconds.
fn streamed(frames: Vec<Vec<u8>>, first: Duration, cut: bool) -> Response {
    let frames =
        futures::stream::iter(frames.into_iter().enumerate()).then(move |(i, f)| async move {
            if i == 2 {
                tokio::time::sleep(first).await;
            }
            Ok::<Bytes, std::io::Error>(Bytes::from(f))
        });
    // A cut connection: an error from the body ends the response without its end.
    let tail = futures::stream::iter(cut.then(|| Err(std::io::Error::other("connection reset"))));
    (
        StatusCode::OK,
        [("content-type", "application/vnd.amazon.eventstream")],
        Body::from_stream(frames.chain(tail)),
    )
        .into_response()
}

fn error(status: u16, kind: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        json!({"message": format!("scripted {kind}")}).to_string(),
    )
        .into_response()
}

/// The text of the last user message: which agent asks.
fn ask(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.first())
        .and_then(|m| m["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

async fn converse(
    State(f): State<FakeBedrock>,
    Path((model, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let streaming = match op.as_str() {
        "converse-stream" => true,
        "converse" => false,
        _ => return error(404, "UnknownOperationException"),
    };
    f.requests.lock().unwrap().push(Request {
        model,
        streaming,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body: body.clone(),
    });
    let reply = f
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Reply::Answer(model_answers::by_agent(&ask(&body)).into()));
    if !streaming {
        return match reply {
            Reply::Answer(text) | Reply::SlowFirstToken(_, text) => Json(json!({
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": INPUT_TOKENS, "outputTokens": OUTPUT_TOKENS,
                          "totalTokens": INPUT_TOKENS + OUTPUT_TOKENS},
                "metrics": {"latencyMs": 420}
            })),
            Reply::Stop(reason) => Json(json!({
                "output": {"message": {"role": "assistant", "content": []}},
                "stopReason": reason,
                "usage": {"inputTokens": INPUT_TOKENS, "outputTokens": 0, "totalTokens": INPUT_TOKENS},
                "metrics": {"latencyMs": 20}
            })),
            Reply::Error(status, kind) => return error(status, kind),
            other => panic!("{other:?} has no Converse form"),
        }
        .into_response();
    }
    match reply {
        Reply::Answer(text) => {
            let frames = [opening(), deltas(&text), closing("end_turn")].concat();
            streamed(frames, Duration::ZERO, false)
        }
        Reply::SlowFirstToken(first, text) => {
            let frames = [opening(), deltas(&text), closing("end_turn")].concat();
            streamed(frames, first, false)
        }
        Reply::Error(status, kind) => error(status, kind),
        Reply::StreamException(text, kind) => {
            let frames = [opening(), deltas(&text), vec![exception(kind)]].concat();
            streamed(frames, Duration::ZERO, false)
        }
        Reply::Cut(text) => streamed([opening(), deltas(&text)].concat(), Duration::ZERO, true),
        Reply::Garbage => streamed(
            vec![b"this is not an event stream message at all".to_vec()],
            Duration::ZERO,
            false,
        ),
        Reply::Stop(reason) => {
            streamed([opening(), closing(reason)].concat(), Duration::ZERO, false)
        }
    }
}

impl FakeBedrock {
    /// A fake with this script.
    pub fn new(script: Vec<Reply>) -> FakeBedrock {
        let f = FakeBedrock::default();
        f.script.lock().unwrap().extend(script);
        f
    }

    /// Serves on a loopback port; returns the endpoint URL for the SDK.
    pub async fn serve(&self) -> String {
        let app = Router::new()
            .route("/model/{model}/{op}", post(converse))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}
