//! The Bedrock generator through the real `aws-sdk-bedrockruntime` (SigV4, event-stream
//! decoding, typed errors) against a loopback fake of Bedrock Runtime's wire protocol with
//! scripted faults, and `campaign run --generator bedrock` end to end in both modes.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use campaign_shared::adapters::bedrock::{BedrockConfig, BedrockGenerator, BedrockModel};
use campaign_shared::domain::{Agent, Brief, Content, RunId};
use campaign_shared::ports::{Generator, GeneratorError};
use campaign_tests::fake_bedrock::{FakeBedrock, INPUT_TOKENS, OUTPUT_TOKENS, Reply};
use campaign_tests::model_answers::{self, GOOD_COPY, GOOD_VISUAL};
use serde_json::Value;

const MODEL: &str = "amazon.nova-lite-v1:0";

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTESTONLY",
            "secret",
            None,
            None,
            "test",
        ))
        .load()
        .await
}

async fn fake_with(script: Vec<Reply>, config: BedrockConfig) -> (FakeBedrock, BedrockGenerator) {
    let f = FakeBedrock::new(script);
    let endpoint = f.serve().await;
    let g = BedrockModel::generator(&sdk(&endpoint).await, config);
    (f, g)
}

async fn fake(script: Vec<Reply>) -> (FakeBedrock, BedrockGenerator) {
    fake_with(script, BedrockConfig::new(MODEL)).await
}

fn brief() -> Brief {
    Brief::from_value(&model_answers::descriptor_brief()).unwrap()
}

#[tokio::test]
async fn a_streamed_answer_becomes_the_artifact_with_usage_and_the_whole_brief_in_the_prompt() {
    let (f, g) = fake(vec![Reply::Answer(GOOD_COPY.into())]).await;
    let b = brief();
    let generated = g.generate(Agent::Copy, &b, RunId::new()).await.unwrap();
    let Content::Copy(c) = &generated.content else {
        panic!("{generated:?}")
    };
    assert_eq!(c.headline, "Ride Aurora this spring");
    let used = generated.model.unwrap();
    assert_eq!(used.model, MODEL);
    assert_eq!(
        (used.prompt_tokens, used.completion_tokens),
        (Some(INPUT_TOKENS as u64), Some(OUTPUT_TOKENS as u64))
    );
    assert!(used.first_token_ms.is_some() && !used.repaired);

    let requests = f.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.model, MODEL, "the model id is the path's");
    assert!(r.streaming, "ConverseStream by default");
    assert!(
        r.authorization
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTONLY/"),
        "signed by the SDK: {}",
        r.authorization
    );
    assert!(
        r.body["system"][0]["text"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    assert_eq!(r.body["inferenceConfig"]["maxTokens"], 2048);
    let prompt = r.body["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(r.body["messages"][0]["role"], "user");
    model_answers::assert_prompt_carries_the_brief(prompt, &b);
}

#[tokio::test]
async fn converse_without_streaming_works_the_same() {
    let mut config = BedrockConfig::new(MODEL);
    config.stream = false;
    let (f, g) = fake_with(vec![Reply::Answer(GOOD_VISUAL.into())], config).await;
    let generated = g
        .generate(Agent::Visual, &brief(), RunId::new())
        .await
        .unwrap();
    let Content::Visual(v) = &generated.content else {
        panic!("{generated:?}")
    };
    assert_eq!(v.headline, "Ride into spring");
    assert!(v.svg.contains("Ride into spring"));
    assert_eq!(
        generated.model.unwrap().completion_tokens,
        Some(OUTPUT_TOKENS as u64)
    );
    assert!(!f.requests()[0].streaming);
}

#[tokio::test]
async fn a_prohibited_term_is_repaired_once_then_a_second_miss_fails_the_agent() {
    let bad = GOOD_COPY.replace("Book a test ride\"}", "Book a FREE test ride\"}");
    let (f, g) = fake(vec![
        Reply::Answer(bad.clone()),
        Reply::Answer(GOOD_COPY.into()),
    ])
    .await;
    let used = g
        .generate(Agent::Copy, &brief(), RunId::new())
        .await
        .unwrap()
        .model
        .unwrap();
    assert!(used.repaired);
    assert_eq!(
        used.prompt_tokens,
        Some(2 * INPUT_TOKENS as u64),
        "both requests counted"
    );
    let repair = &f.requests()[1].body["messages"];
    let turns: Vec<&str> = repair
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(turns, ["user", "assistant", "user"]);
    let ask = repair[2]["content"][0]["text"].as_str().unwrap();
    assert!(
        ask.contains("callToAction") && ask.contains("FREE"),
        "{ask}"
    );

    let (_, g) = fake(vec![
        Reply::Answer(bad),
        Reply::Answer("{\"headline\": 1}".into()),
    ])
    .await;
    match g.generate(Agent::Copy, &brief(), RunId::new()).await {
        Err(GeneratorError::Failed(m)) => {
            assert!(m.to_string().contains("after one repair"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn throttling_unavailability_stream_errors_cuts_and_timeouts_are_transient() {
    for reply in [
        Reply::Error(429, "ThrottlingException"),
        Reply::Error(503, "ServiceUnavailableException"),
        Reply::Error(500, "InternalServerException"),
        Reply::Error(424, "ModelNotReadyException"),
        Reply::StreamException("{\"head".into(), "throttlingException"),
        Reply::StreamException("{\"head".into(), "modelStreamErrorException"),
        Reply::Cut("{\"headline\": ".into()),
        Reply::Garbage,
        Reply::SlowFirstToken(Duration::from_secs(5), GOOD_COPY.into()),
    ] {
        let mut config = BedrockConfig::new(MODEL);
        config.timeout = Duration::from_millis(800);
        let (_, g) = fake_with(vec![reply.clone()], config).await;
        match g.generate(Agent::Copy, &brief(), RunId::new()).await {
            Err(GeneratorError::Transient(m)) => assert!(m.to_string().contains(MODEL), "{m}"),
            other => panic!("{reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn refusals_and_rejected_requests_fail_the_agent_with_the_reason() {
    for (reply, says) in [
        (Reply::Stop("content_filtered"), "content_filtered"),
        (Reply::Stop("guardrail_intervened"), "guardrail_intervened"),
        (
            Reply::Error(400, "ValidationException"),
            "ValidationException",
        ),
        (
            Reply::Error(403, "AccessDeniedException"),
            "AccessDeniedException",
        ),
        (
            Reply::Error(404, "ResourceNotFoundException"),
            "ResourceNotFoundException",
        ),
    ] {
        let (_, g) = fake(vec![reply.clone()]).await;
        match g.generate(Agent::Copy, &brief(), RunId::new()).await {
            Err(GeneratorError::Failed(m)) => {
                assert!(m.to_string().contains(says), "{reply:?}: {m}")
            }
            other => panic!("{reply:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_first_token_is_observed_as_such() {
    let (_, g) = fake(vec![Reply::SlowFirstToken(
        Duration::from_millis(400),
        GOOD_COPY.into(),
    )])
    .await;
    let used = g
        .generate(Agent::Copy, &brief(), RunId::new())
        .await
        .unwrap()
        .model
        .unwrap();
    let first = used.first_token_ms.unwrap();
    assert!(first >= 400, "first token at {first} ms");
    assert!(used.latency_ms >= first);
}

/// `campaign run` with the brief on stdin and `args`, against the fake; the run as JSON.
async fn campaign_run(endpoint: &str, mode: &str, args: &[&str]) -> Value {
    let endpoint = endpoint.to_owned();
    let mode = mode.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(campaign_tests::runtime_api::binary("campaign"))
            .args(["run", "-", "--json", "--mode", &mode])
            .args(&args)
            .arg("--db")
            .arg(dir.path().join("c.db"))
            .env("CAMPAIGN_TIME_SCALE", "0.05")
            .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTESTONLY")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(model_answers::descriptor_brief().to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

fn artifact<'a>(run: &'a Value, agent: &str) -> &'a Value {
    run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == agent)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_run_with_bedrock_and_palette_descriptors_completes_in_both_modes() {
    let f = FakeBedrock::new(vec![Reply::Error(429, "ThrottlingException")]);
    let endpoint = f.serve().await;
    for mode in ["parallel", "sequential"] {
        let run = campaign_run(
            &endpoint,
            mode,
            &["--generator", "bedrock", "--model", MODEL],
        )
        .await;
        assert_eq!(run["envelope"]["outcome"], "success", "{mode}: {run:#}");
        for agent in ["copy", "social", "visual"] {
            let a = artifact(&run, agent);
            assert_eq!(a["model"]["model"], MODEL, "{mode} {agent}: {a:#}");
            assert_eq!(a["model"]["promptTokens"], INPUT_TOKENS);
            assert!(
                a["audit"]["verdict"].is_string(),
                "the rule audit still runs"
            );
        }
        // "deep navy" is not a known color: the visual agent drew a color for it and the
        // audit says which.
        let visual = artifact(&run, "visual");
        assert!(
            visual["audit"]["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["rule"] == "palette"
                    && f["message"].as_str().unwrap().contains("deep navy")),
            "{visual:#}"
        );
        campaign_tests::openapi::Spec::default().check_schema("Run", &run);
    }
    // The throttled first call was retried by the flow (Transient → Retry).
    assert!(f.requests().len() >= 7, "{}", f.requests().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_has_its_own_generator() {
    let f = FakeBedrock::default();
    let endpoint = f.serve().await;
    let run = campaign_run(
        &endpoint,
        "parallel",
        &[
            "--generator",
            "copy=bedrock",
            "--model",
            &format!("copy={MODEL}"),
        ],
    )
    .await;
    assert_eq!(run["envelope"]["outcome"], "success", "{run:#}");
    assert_eq!(artifact(&run, "copy")["model"]["model"], MODEL);
    assert!(artifact(&run, "social")["model"].is_null(), "built-in");
    assert!(artifact(&run, "visual")["model"].is_null(), "built-in");
    assert_eq!(f.requests().len(), 1, "only the copy agent asked the model");
}
