//! The OpenAI-compatible generator against a loopback fake that speaks the real wire format
//! (`POST /v1/chat/completions`, `stream: true`, server-sent `data:` chunks ending in
//! `[DONE]`), with scripted faults. No trait is mocked: the real HTTP client, SSE parser,
//! prompt, validation and repair run.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use campaign_shared::adapters::openai::{OpenAiConfig, OpenAiGenerator, OpenAiModel};
use campaign_shared::domain::{Agent, Brief, Content, RunId};
use campaign_shared::ports::{Generator, GeneratorError};
use campaign_tests::model_answers::{self, GOOD_COPY, GOOD_SOCIAL, GOOD_VISUAL};
use serde_json::{Value, json};

/// One scripted answer of the fake.
#[derive(Debug, Clone)]
enum Reply {
    /// Streams this text in small chunks, then usage and `[DONE]`.
    Answer(String),
    /// Answers this HTTP status with an error document.
    Status(u16),
    /// Starts streaming this text, then closes the connection without `[DONE]`.
    Cut(String),
    /// A chunk that is not JSON.
    Malformed,
    /// `finish_reason: content_filter`.
    Refuse,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

fn chunk(delta: Value, finish: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

async fn completions(State(f): State<Fake>, body: axum::body::Bytes) -> Response {
    f.requests
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    let request: Value = serde_json::from_slice(&body).unwrap();
    // Unscripted: a good answer for whichever agent is asking (the flow runs them in any
    // order).
    let reply = f
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| Reply::Answer(by_agent(&request).into()));
    let sse = |text: String| {
        (
            StatusCode::OK,
            [("content-type", "text/event-stream")],
            text,
        )
            .into_response()
    };
    match reply {
        Reply::Answer(text) => {
            let mut out = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(7) {
                out.push_str(&chunk(
                    json!({"content": piece.iter().collect::<String>()}),
                    Value::Null,
                ));
            }
            out.push_str(&chunk(json!({}), json!("stop")));
            out.push_str(&format!(
                "data: {}\n\n",
                json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
                       "usage": {"prompt_tokens": 321, "completion_tokens": 123, "total_tokens": 444}})
            ));
            out.push_str("data: [DONE]\n\n");
            sse(out)
        }
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            json!({"error": {"message": "scripted", "type": "rate_limit_exceeded"}}).to_string(),
        )
            .into_response(),
        Reply::Cut(text) => sse(chunk(json!({"content": text}), Value::Null)),
        Reply::Malformed => sse("data: {not json\n\n".into()),
        Reply::Refuse => {
            let mut out = chunk(json!({"content": ""}), json!("content_filter"));
            out.push_str("data: [DONE]\n\n");
            sse(out)
        }
    }
}

/// The fake on loopback: its base URL.
async fn serve(f: &Fake) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(f.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v1")
}

async fn fake(script: Vec<Reply>) -> (Fake, OpenAiGenerator) {
    let f = Fake::default();
    f.script.lock().unwrap().extend(script);
    let base_url = serve(&f).await;
    let g = OpenAiModel::generator(OpenAiConfig {
        base_url,
        model: "fake-model".into(),
        api_key: Some("sk-test".into()),
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    (f, g)
}

fn by_agent(request: &Value) -> &'static str {
    model_answers::by_agent(
        request["messages"][1]["content"]
            .as_str()
            .unwrap_or_default(),
    )
}

fn brief() -> Brief {
    Brief::from_value(&model_answers::descriptor_brief()).unwrap()
}

#[tokio::test]
async fn a_valid_answer_becomes_the_artifact_and_the_prompt_carries_the_whole_brief() {
    let (f, g) = fake(vec![Reply::Answer(format!("```json\n{GOOD_COPY}\n```"))]).await;
    let b = brief();
    let generated = g.generate(Agent::Copy, &b, RunId::new()).await.unwrap();
    // What the answer cost and took is kept for the artifact.
    let used = generated.model.clone().unwrap();
    assert_eq!(used.model, "fake-model");
    assert_eq!(
        (used.prompt_tokens, used.completion_tokens),
        (Some(321), Some(123))
    );
    assert!(used.first_token_ms.is_some() && !used.repaired);
    let content = generated.content;
    let Content::Copy(c) = content else {
        panic!("{content:?}")
    };
    assert_eq!(c.call_to_action, "Book a test ride");
    let req = f.requests.lock().unwrap()[0].clone();
    assert_eq!(req["model"], "fake-model");
    assert_eq!(req["stream"], true);
    let prompt = req["messages"][1]["content"].as_str().unwrap();
    model_answers::assert_prompt_carries_the_brief(prompt, &b);
}

#[tokio::test]
async fn a_prohibited_term_is_repaired_once_with_the_violation_named() {
    let bad = GOOD_COPY.replace("Book a test ride\"}", "Book a FREE test ride\"}");
    let (f, g) = fake(vec![Reply::Answer(bad), Reply::Answer(GOOD_COPY.into())]).await;
    let generated = g
        .generate(Agent::Copy, &brief(), RunId::new())
        .await
        .unwrap();
    let used = generated.model.unwrap();
    assert!(used.repaired);
    assert_eq!(used.prompt_tokens, Some(642), "both requests counted");
    let requests = f.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let repair = requests[1]["messages"].as_array().unwrap();
    assert_eq!(repair.len(), 4, "system, user, the answer, the repair");
    assert_eq!(repair[2]["role"], "assistant");
    let ask = repair[3]["content"].as_str().unwrap();
    assert!(
        ask.contains("callToAction") && ask.contains("FREE"),
        "{ask}"
    );
}

#[tokio::test]
async fn an_answer_still_wrong_after_its_repair_fails_the_agent_with_the_reasons() {
    let (_, g) = fake(vec![
        Reply::Answer("not json at all".into()),
        Reply::Answer(r#"{"headline": "x"}"#.into()),
    ])
    .await;
    match g.generate(Agent::Copy, &brief(), RunId::new()).await {
        Err(GeneratorError::Failed(m)) => {
            assert!(
                m.to_string().contains("after one repair") && m.to_string().contains("shape"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn throttling_server_errors_cut_and_malformed_streams_are_transient() {
    for reply in [
        Reply::Status(429),
        Reply::Status(503),
        Reply::Cut("{\"headline\": ".into()),
        Reply::Malformed,
    ] {
        let (_, g) = fake(vec![reply.clone()]).await;
        match g.generate(Agent::Copy, &brief(), RunId::new()).await {
            Err(GeneratorError::Transient(_)) => {}
            other => panic!("{reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_refusal_or_a_rejected_request_fails_the_agent() {
    for reply in [Reply::Refuse, Reply::Status(401), Reply::Status(400)] {
        let (_, g) = fake(vec![reply.clone()]).await;
        match g.generate(Agent::Copy, &brief(), RunId::new()).await {
            Err(GeneratorError::Failed(_)) => {}
            other => panic!("{reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn social_and_visual_answers_become_their_artifacts() {
    let (_, g) = fake(vec![
        Reply::Answer(GOOD_SOCIAL.into()),
        Reply::Answer(GOOD_VISUAL.into()),
    ])
    .await;
    let b = brief();
    let Content::Social(s) = g
        .generate(Agent::Social, &b, RunId::new())
        .await
        .unwrap()
        .content
    else {
        panic!()
    };
    assert_eq!(s.posts.len(), 3);
    let Content::Visual(v) = g
        .generate(Agent::Visual, &b, RunId::new())
        .await
        .unwrap()
        .content
    else {
        panic!()
    };
    assert_eq!(v.headline, "Ride into spring");
    assert!(
        v.svg.contains("Ride into spring"),
        "the preview draws the model's headline"
    );
    let navy = campaign_shared::domain::palette::parse_color("deep navy")
        .unwrap()
        .hex;
    assert!(v.palette.iter().any(|p| p.hex == navy), "{:?}", v.palette);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_run_with_a_model_completes_in_both_modes() {
    let f = Fake::default();
    // The first call is throttled (429): a Transient failure the flow retries.
    f.script.lock().unwrap().push_back(Reply::Status(429));
    let base_url = serve(&f).await;
    for mode in ["parallel", "sequential"] {
        let base_url = base_url.clone();
        let out = tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            std::process::Command::new(campaign_tests::runtime_api::binary("campaign"))
                .args([
                    "run",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/brief.json"),
                ])
                .args([
                    "--json",
                    "--mode",
                    mode,
                    "--generator",
                    "openai",
                    "--model",
                    "fake-model",
                ])
                .args(["--base-url", &base_url])
                .arg("--db")
                .arg(dir.path().join("c.db"))
                .env("CAMPAIGN_TIME_SCALE", "0.05")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(run["envelope"]["outcome"], "success", "{mode}: {run:#}");
        let copy = run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent"] == "copy")
            .unwrap();
        assert_eq!(copy["content"]["headline"], "Ride Aurora this spring");
        assert_eq!(copy["model"]["model"], "fake-model", "{copy:#}");
        assert_eq!(copy["model"]["completionTokens"], 123);
        campaign_tests::openapi::Spec::default().check_schema("Run", &run);
        assert!(
            copy["audit"]["verdict"].is_string(),
            "the rule audit still runs"
        );
    }
    // The throttled first call was retried by the flow (Transient → Retry).
    let requests = f.requests.lock().unwrap().len();
    assert!(requests >= 7, "{requests}");
}

/// The bench's simulated model at a given pace: the first token after `first`.
async fn paced(first: Duration, timeout: Duration) -> OpenAiGenerator {
    let base_url = campaign_cli::model_sim::serve(campaign_cli::model_sim::Pace {
        first_token: first,
        tokens_per_s: 400.0,
    })
    .await
    .unwrap();
    OpenAiModel::generator(OpenAiConfig {
        base_url,
        model: "paced".into(),
        api_key: None,
        timeout,
    })
    .unwrap()
}

#[tokio::test]
async fn a_slow_first_token_is_measured_and_one_past_the_timeout_is_transient() {
    let g = paced(Duration::from_millis(400), Duration::from_secs(10)).await;
    let used = g
        .generate(Agent::Copy, &brief(), RunId::new())
        .await
        .unwrap()
        .model
        .unwrap();
    let first = used.first_token_ms.unwrap();
    assert!(first >= 400, "first token at {first} ms");
    assert!(used.latency_ms > first);

    let g = paced(Duration::from_secs(5), Duration::from_millis(500)).await;
    match g.generate(Agent::Copy, &brief(), RunId::new()).await {
        Err(GeneratorError::Transient(m)) => {
            assert!(
                m.to_string().contains("no whole answer within 500ms"),
                "{m}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_server_is_transient_and_its_message_names_the_root_cause() {
    // A port nothing listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let g = OpenAiModel::generator(OpenAiConfig {
        base_url: format!("http://{addr}/v1"),
        model: "nowhere".into(),
        api_key: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let e = g
        .generate(Agent::Copy, &brief(), RunId::new())
        .await
        .unwrap_err();
    let GeneratorError::Transient(cause) = &e else {
        panic!("{e:?}")
    };
    // The HTTP client's own error is kept as the source, not flattened to text…
    let mut reqwest_error = None;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&**cause);
    while let Some(c) = next {
        reqwest_error = reqwest_error.or(c.downcast_ref::<reqwest::Error>());
        next = c.source();
    }
    assert!(reqwest_error.is_some_and(|r| r.is_connect()), "{e:?}");
    // …and what the step reports (the Lambda's errorMessage, the log line) shows the
    // connection's own failure, which the HTTP client's message alone does not.
    let shown = campaign_shared::errors::FlowError::from(e).to_string();
    assert!(
        shown.contains(&addr.to_string()) && shown.to_lowercase().contains("connection refused"),
        "{shown}"
    );
}
