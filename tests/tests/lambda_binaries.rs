//! The deployable binaries themselves: each is spawned with `AWS_LAMBDA_RUNTIME_API`
//! pointing at a Runtime API served on loopback, fed an event, and its response (or its
//! error name) checked. AWS calls go to moto.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use campaign_tests::aws_env::{AwsEnv, fixture};
use campaign_tests::runtime_api::{Outcome, RuntimeApi, binary, spawn_function};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_binary_answers_an_http_api_event() {
    let env = AwsEnv::start().await;
    let api = RuntimeApi::start().await;
    let mut child = spawn_function(
        &binary("api"),
        &api,
        &env.function_env("http://127.0.0.1:1"),
    );
    let out = api
        .invoke(fixture("http-api-v2-post-campaigns.json", ""))
        .await;
    let Outcome::Response(resp) = out else {
        panic!("{out:?}")
    };
    assert_eq!(resp["statusCode"], 202, "{resp}");
    let body: serde_json::Value = serde_json::from_str(resp["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "queued");
    let out = api
        .invoke(fixture("http-api-v2-post-invalid-brief.json", ""))
        .await;
    let Outcome::Response(resp) = out else {
        panic!("{out:?}")
    };
    assert_eq!(resp["statusCode"], 400);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_binary_reports_failures_by_error_name() {
    let env = AwsEnv::start().await;
    let api = RuntimeApi::start().await;
    let mut child = spawn_function(
        &binary("copy-agent"),
        &api,
        &env.function_env("http://127.0.0.1:1"),
    );
    // An unknown run: InvalidInput, which the ASL's Catch turns into a recorded failure.
    let out = api
        .invoke(json!({ "runId": "01JD5Z8X7Q2M4N6P8R0S2T4V6W" }))
        .await;
    match out {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "InvalidInput"),
        other => panic!("{other:?}"),
    }
    let out = api.invoke(json!({ "nope": true })).await;
    assert!(
        matches!(out, Outcome::Error { ref error_type, .. } if error_type == "InvalidInput"),
        "{out:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_binary_returns_partial_batch_failures() {
    let env = AwsEnv::start().await;
    let api = RuntimeApi::start().await;
    let mut child = spawn_function(
        &binary("notifier"),
        &api,
        &env.function_env("http://127.0.0.1:1"),
    );
    let mut sqs = fixture("sqs-status-event.json", "");
    sqs["Records"][0]["body"] = json!("not an event");
    let out = api.invoke(sqs).await;
    let Outcome::Response(resp) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        resp["batchItemFailures"][0]["itemIdentifier"],
        "059f36b4-87a3-44ab-83d2-661975830a7d"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_with_a_missing_variable_fails_at_start_naming_it() {
    let api = RuntimeApi::start().await;
    let child = spawn_function(
        &binary("finalize"),
        &api,
        &[("TABLE_NAME".into(), "t".into())],
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STATUS_QUEUE_URL"), "{stderr}");
}
