//! The deployable binaries themselves: each is spawned with `AWS_LAMBDA_RUNTIME_API`
//! pointing at a Runtime API served on loopback, fed an event, and its response (or its
//! error name) checked. AWS calls go to moto.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use campaign_shared::domain::{Agent, Brief};
use campaign_shared::observe;
use campaign_shared::usecases::{self, TaskFunction};
use campaign_tests::aws_env::{AwsEnv, fixture};
use campaign_tests::example_brief;
use campaign_tests::runtime_api::{
    Outcome, RuntimeApi, binary, spawn_function, spawn_function_logging_to,
};
use serde_json::{Value, json};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_that_closes_a_run_emits_the_seed_metrics_as_emf_lines() {
    let env = AwsEnv::start().await;
    let deps = &env.deps;
    // A run ready to close: copy failed, social and visual generated and audited.
    let brief = Brief::from_value(&example_brief()).unwrap();
    let run_id = usecases::submit(deps, brief, None).await.unwrap();
    let id = json!(run_id);
    TaskFunction::Agent(Agent::Copy)
        .call(
            deps,
            json!({ "runId": id, "failure": { "Error": "AgentFailed", "Cause": "{\"errorType\":\"AgentFailed\",\"errorMessage\":\"no\"}" } }),
        )
        .await
        .unwrap();
    for agent in [Agent::Social, Agent::Visual] {
        TaskFunction::Agent(agent)
            .call(deps, json!({ "runId": id }))
            .await
            .unwrap();
    }
    TaskFunction::Audit
        .call(deps, json!({ "runId": id, "action": "audit" }))
        .await
        .unwrap();

    // The finalize binary closes it, and flushes its metrics after the invocation.
    let log = tempfile::NamedTempFile::new().unwrap();
    let api = RuntimeApi::start().await;
    let mut child = spawn_function_logging_to(
        &binary("finalize"),
        &api,
        &env.function_env("http://127.0.0.1:1"),
        log.reopen().unwrap().into(),
    );
    let out = api.invoke(json!({ "runId": id })).await;
    assert!(
        matches!(&out, Outcome::Response(r) if r["outcome"] == "partial"),
        "{out:?}"
    );
    let mut emitted: Vec<(String, Value)> = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(log.path()).unwrap();
        emitted = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|doc| doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == observe::NAMESPACE)
            .flat_map(|doc| {
                doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| (m["Name"].as_str().unwrap().to_string(), doc.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if !emitted.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let find = |name: &str| {
        emitted
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, doc)| doc.clone())
            .unwrap_or_else(|| panic!("no EMF line carries {name}: {emitted:#?}"))
    };
    // The five seed metrics: orchestration duration, time to first artifact, audit latency
    // added, failure rate per agent (failures over agents), cancellation rate (runs by outcome).
    for name in [
        observe::RUN_DURATION,
        observe::TIME_TO_FIRST_ARTIFACT,
        observe::AUDIT_LATENCY,
    ] {
        let doc = find(name);
        assert!(doc[name][0].as_f64().unwrap() >= 0.0, "{doc}");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["Name"] == name)
                .unwrap()["Unit"],
            "Seconds"
        );
    }
    let failures = find(observe::AGENT_FAILURES);
    assert_eq!(failures["agent"], "copy");
    assert_eq!(failures[observe::AGENT_FAILURES], 1);
    let runs = find(observe::RUNS);
    assert_eq!(runs["outcome"], "partial");
    assert_eq!(
        runs["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
        json!(["outcome"])
    );
    find(observe::AGENTS);
}

/// Every function binary is linked position-dependent (`functions/no-pie.rs`): the loader
/// has no relative relocations to write at a cold start. ELF `e_type` 2 is an executable
/// at a fixed address; 3 (a shared object) is what a position-independent one is.
#[test]
fn every_function_binary_is_linked_at_a_fixed_address() {
    for name in campaign_cli::bench::BINARIES {
        let path = binary(name);
        let mut header = [0u8; 18];
        std::io::Read::read_exact(&mut std::fs::File::open(&path).unwrap(), &mut header).unwrap();
        assert_eq!(&header[..4], b"\x7fELF", "{}", path.display());
        let e_type = u16::from_le_bytes([header[16], header[17]]);
        assert_eq!(e_type, 2, "{name} is not ET_EXEC (got {e_type})");
    }
}
