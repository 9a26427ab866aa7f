//! The AWS deployment as a whole, on emulators: moto executes the real
//! `statemachine.asl.json`, whose Lambda Tasks run the real function binaries; clients go
//! through the `api` binary with API Gateway events; what AWS would deliver by itself
//! (status-change events, queue messages) the harness delivers to the real consumers.
//! See `tests/src/aws_e2e.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeSet;
use std::time::Duration;

use campaign_tests::assert_gapless;
use campaign_tests::aws_e2e::Deployment;
use campaign_tests::runtime_api::Outcome;
use campaign_tests::{agent_artifact_ids, example_brief};
use serde_json::{Value, json};

/// Generous: a loaded 2-core CI machine runs moto, the engine and eleven binaries.
const FLOW_LIMIT: Duration = Duration::from_secs(60);

async fn submit(d: &Deployment, brief: &Value) -> String {
    let (status, body) = d.http("POST", "/campaigns", Some(brief)).await;
    assert_eq!(status, 202, "{body}");
    body["runId"].as_str().unwrap().to_string()
}

async fn run(d: &Deployment, id: &str) -> Value {
    let (status, body) = d.http("GET", &format!("/campaigns/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits until the run's `agent` has `status`.
async fn wait_agent(d: &Deployment, id: &str, agent: &str, status: &str) {
    let deadline = std::time::Instant::now() + FLOW_LIMIT;
    loop {
        let r = run(d, id).await;
        if r["agents"][agent]["status"] == status {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{r:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_posted_to_the_api_runs_the_real_state_machine_to_an_audited_bundle_in_both_modes()
{
    let d = Deployment::start(&[]).await;
    // The dashboard comes from the api function too, told the WebSocket API's URL.
    let page = d.http_response("GET", "/", None).await;
    assert_eq!(page["statusCode"], 200);
    assert!(
        page["headers"]["content-security-policy"]
            .as_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        page["body"]
            .as_str()
            .unwrap()
            .contains(&format!(r#"content="{}""#, d.websocket_url())),
        "{page}"
    );
    for mode in ["parallel", "sequential"] {
        let mut brief = example_brief();
        brief["executionMode"] = json!(mode);
        let (status, accepted) = d.http("POST", "/campaigns", Some(&brief)).await;
        assert_eq!(status, 202, "{accepted}");
        // The real WebSocket URL, not the local `/ws`.
        assert_eq!(accepted["links"]["ws"], d.websocket_url());
        let id = accepted["runId"].as_str().unwrap();
        assert_eq!(d.execution_end(id, FLOW_LIMIT).await, "SUCCEEDED", "{mode}");
        let run = run(&d, id).await;
        assert_eq!(run["status"], "completed", "{mode}: {run:#}");
        assert_eq!(run["executionMode"], mode);
        assert_eq!(run["envelope"]["outcome"], "success", "{mode}: {run:#}");
        let artifacts = run["artifacts"].as_array().unwrap();
        assert_eq!(artifacts.len(), 3, "{mode}: {run:#}");
        for a in artifacts {
            assert!(a["audit"]["verdict"].is_string(), "{mode}: unaudited {a:#}");
        }
        for agent in ["copy", "social", "visual"] {
            // Each agent ran once: no Task was retried over a write conflict.
            assert_eq!(run["agents"][agent]["attempts"], 1, "{mode}: {run:#}");
            assert_eq!(run["agents"][agent]["status"], "completed");
        }
        let (_, events) = d
            .http("GET", &format!("/campaigns/{id}/events?after=0"), None)
            .await;
        let events = events["events"].as_array().unwrap();
        assert_gapless(events, 1);
        // Every transition is one JSON log line at INFO (Lambda's JSON format) written by
        // the function that made it: as many lines as events, each naming its event.
        let mut lines = d.transition_lines(id);
        for _ in 0..100 {
            if lines.len() >= events.len() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            lines = d.transition_lines(id);
        }
        assert_eq!(lines.len(), events.len(), "{mode}: {lines:#?}\n{events:#?}");
        for e in events {
            let line = lines
                .iter()
                .find(|l| l["fields"]["seq"] == e["seq"])
                .unwrap_or_else(|| panic!("{mode}: no log line for {e}"));
            assert_eq!(line["level"], "INFO");
            assert_eq!(line["fields"]["to"], e["status"], "{line}");
            assert_eq!(line["fields"]["scope"], e["scope"], "{line}");
            assert_eq!(line["fields"]["from"].is_null(), e["seq"] == 1, "{line}");
        }
    }
    // The transitions come from the functions that made them.
    let writers: std::collections::BTreeSet<String> = d
        .log_lines()
        .into_iter()
        .filter(|(_, l)| l["fields"]["message"] == "transition")
        .map(|(b, _)| b)
        .collect();
    for b in [
        "api",
        "copy-agent",
        "social-agent",
        "visual-agent",
        "audit",
        "finalize",
    ] {
        assert!(writers.contains(b), "{b} logged no transition: {writers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_agent_binary_ends_the_run_partial_and_a_retry_through_the_api_completes_it() {
    let mut d = Deployment::start(&[("copy-agent", "copy=error")]).await;
    let id = submit(&d, &example_brief()).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let parent = run(&d, &id).await;
    assert_eq!(parent["status"], "completed", "{parent:#}");
    assert_eq!(parent["envelope"]["outcome"], "partial", "{parent:#}");
    assert_eq!(parent["envelope"]["retry"]["agents"], json!(["copy"]));
    let error = &parent["agents"]["copy"]["error"];
    assert_eq!(error["code"], "AgentFailed");
    // The reason, not Step Functions' raw Cause (a JSON document as a string).
    assert_eq!(
        error["message"], "injected fault: the copy agent failed",
        "{parent:#}"
    );
    assert_eq!(parent["artifacts"].as_array().unwrap().len(), 2);

    // The fault is fixed (the function redeployed without it); the retry re-runs copy only.
    d.deploy("copy-agent", None).await;
    let (status, body) = d
        .http("POST", &format!("/campaigns/{id}/retry"), Some(&json!({})))
        .await;
    assert_eq!(status, 202, "{body}");
    let child_id = body["runId"].as_str().unwrap().to_string();
    assert_ne!(child_id, id);
    assert_eq!(d.execution_end(&child_id, FLOW_LIMIT).await, "SUCCEEDED");
    let child = run(&d, &child_id).await;
    assert_eq!(child["status"], "completed", "{child:#}");
    assert_eq!(child["envelope"]["outcome"], "success", "{child:#}");
    assert_eq!(child["parentRunId"], json!(id));
    assert_eq!(child["iteration"], 2);
    assert_eq!(child["agents"]["social"]["reused"], true);
    assert_eq!(child["agents"]["copy"]["attempts"], 1);
    let reused: BTreeSet<(String, String)> = agent_artifact_ids(&parent).into_iter().collect();
    let now: BTreeSet<(String, String)> = agent_artifact_ids(&child).into_iter().collect();
    assert!(reused.is_subset(&now), "reused artifacts keep their ids");
    assert_eq!(now.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_through_the_api_stops_the_execution_and_execution_events_keeps_the_run_cancelled()
{
    let d = Deployment::start(&[("copy-agent", "copy=slow:4s")]).await;
    let id = submit(&d, &example_brief()).await;
    // Social and visual finish while copy is still generating.
    wait_agent(&d, &id, "social", "generated").await;
    wait_agent(&d, &id, "visual", "generated").await;
    let (status, body) = d
        .http("POST", &format!("/campaigns/{id}/cancel"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "cancelled");
    // AWS reports ABORTED. moto lets the Task that was in flight at the stop finish, and
    // that copy agent, finding its run closed, fails with `Cancelled`, which moto then
    // reports as the execution's failure. Either way the execution ended at the cancel.
    let end = d.execution_end(&id, FLOW_LIMIT).await;
    assert!(end == "ABORTED" || end == "FAILED Cancelled", "{end}");
    let before = run(&d, &id).await;
    // EventBridge delivers the ABORTED status change; the run is already closed and stays so.
    let out = d.deliver_status_change(&id).await;
    assert!(matches!(out, Outcome::Response(_)), "{out:?}");
    let after = run(&d, &id).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["envelope"]["outcome"], "cancelled");
    assert_eq!(after["artifacts"].as_array().unwrap().len(), 2, "{after:#}");
    assert_eq!(
        before["agents"], after["agents"],
        "execution-events is idempotent"
    );
    assert_eq!(after["agents"]["copy"]["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_stop_reaches_execution_events_and_cancels_the_run_keeping_artifacts() {
    let d = Deployment::start(&[("visual-agent", "visual=slow:4s")]).await;
    let id = submit(&d, &example_brief()).await;
    wait_agent(&d, &id, "copy", "generated").await;
    d.stop_from_console(&id).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "ABORTED");
    let out = d.deliver_status_change(&id).await;
    assert!(matches!(out, Outcome::Response(_)), "{out:?}");
    let r = run(&d, &id).await;
    assert_eq!(r["status"], "cancelled", "{r:#}");
    assert_eq!(r["envelope"]["outcome"], "cancelled");
    // The agent is closed with the run, its finished artifact kept.
    assert_eq!(r["agents"]["copy"]["status"], "cancelled", "{r:#}");
    let copy = r["agents"]["copy"]["artifactId"].as_str().unwrap();
    assert!(
        r["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["artifactId"] == copy),
        "{r:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_unavailable_parks_the_run_and_the_deferred_audit_queue_completes_it() {
    let d = Deployment::start(&[("audit", "audit=unavailable")]).await;
    let id = submit(&d, &example_brief()).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let parked = run(&d, &id).await;
    assert_eq!(parked["status"], "audit_pending", "{parked:#}");
    for agent in ["copy", "social", "visual"] {
        assert_eq!(parked["agents"][agent]["status"], "audit_pending");
    }
    // The finalize step queued the run with a delay; the queue's consumer audits it.
    assert_eq!(d.pump_deferred_audits(Duration::from_secs(45)).await, 1);
    let done = run(&d, &id).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["envelope"]["outcome"], "success", "{done:#}");
    for a in done["artifacts"].as_array().unwrap() {
        assert!(a["audit"]["verdict"].is_string(), "{a:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_reach_a_subscribed_websocket_through_the_notifier_gapless_by_seq() {
    let d = Deployment::start(&[]).await;
    let id = submit(&d, &example_brief()).await;
    d.connect("conn-1").await;
    // Subscribing replays what happened so far through the management API.
    let out = d.subscribe("conn-1", &id, 0).await;
    assert!(
        matches!(&out, Outcome::Response(r) if r["statusCode"] == 200),
        "{out:?}"
    );
    let replayed = d.pushed("conn-1").len();
    assert!(replayed >= 1);
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let delivered = d.pump_status_events().await;
    let pushed = d.pushed("conn-1");
    // The notifier pushed the live events in order (one FIFO group per run).
    let live: Vec<u64> = pushed[replayed..]
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{live:?}");
    assert_eq!(live.len(), delivered, "one push per status event");
    // Replay and live pushes overlap at most; by seq the client has every event once.
    let mut seen: Vec<Value> = Vec::new();
    for e in pushed {
        if !seen.iter().any(|s| s["seq"] == e["seq"]) {
            seen.push(e);
        }
    }
    seen.sort_by_key(|e| e["seq"].as_u64());
    assert_gapless(&seen, 1);
    let last = seen.last().unwrap();
    assert_eq!(last["scope"], "run");
    assert_eq!(last["status"], "completed", "{:#}", run(&d, &id).await);
    let (_, log) = d
        .http("GET", &format!("/campaigns/{id}/events?after=0"), None)
        .await;
    assert_eq!(seen.len(), log["events"].as_array().unwrap().len());

    // A connection that went away is forgotten, not retried.
    let id2 = submit(&d, &example_brief()).await;
    d.connect("conn-gone").await;
    d.subscribe("conn-gone", &id2, 0).await;
    d.disconnect_at_gateway("conn-gone");
    assert_eq!(d.execution_end(&id2, FLOW_LIMIT).await, "SUCCEEDED");
    assert!(d.pump_status_events().await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_requested_event_delivered_twice_to_trigger_starts_one_run() {
    let d = Deployment::start(&[]).await;
    let event = json!({
        "version": "0",
        "id": "7a0b9d8c-e2e0-4c1d-9a55-0d3c2b1a0f99",
        "detail-type": "CampaignRequested",
        "source": "campaign-orchestration.requests",
        "account": "123456789012",
        "time": "2026-12-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": example_brief()
    });
    let first = d.invoke("trigger", event.clone()).await;
    let second = d.invoke("trigger", event).await;
    let (Outcome::Response(a), Outcome::Response(b)) = (&first, &second) else {
        panic!("{first:?} {second:?}")
    };
    assert_eq!(a["runId"], b["runId"]);
    let id = a["runId"].as_str().unwrap();
    assert_eq!(d.execution_end(id, FLOW_LIMIT).await, "SUCCEEDED");
    let (_, list) = d.http("GET", "/campaigns?limit=10", None).await;
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{list:#}");
    assert_eq!(runs[0]["runId"], json!(id));
    assert_eq!(runs[0]["status"], "completed");
    assert_eq!(runs[0]["outcome"], "success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_closes_runs_whose_execution_ended_without_closing_them() {
    use campaign_shared::domain::{Brief, ExecutionMode, RunId};
    use campaign_shared::ports::NewRun;
    let d = Deployment::start(&[("visual-agent", "visual=slow:4s")]).await;
    // A console stop whose status-change event never reached execution-events.
    let stopped = submit(&d, &example_brief()).await;
    wait_agent(&d, &stopped, "copy", "generated").await;
    d.stop_from_console(&stopped).await;
    assert_eq!(d.execution_end(&stopped, FLOW_LIMIT).await, "ABORTED");
    assert_eq!(run(&d, &stopped).await["status"], "generating");
    // A run whose execution never started (the API crashed between the two writes).
    let deps = d.deps();
    let orphan = RunId::new();
    deps.store
        .create_run(NewRun {
            run_id: orphan,
            ..NewRun::first(
                Brief::from_value(&example_brief()).unwrap(),
                ExecutionMode::Parallel,
                time::OffsetDateTime::now_utc(),
            )
        })
        .await
        .unwrap();

    // The sweeper binary, invoked as the schedule does but asking for runs of any age. With
    // the default age (five minutes, from the run's creation and from its execution's
    // end) it leaves both alone.
    let sweep = |min_age: Option<u64>| {
        let event = match min_age {
            Some(s) => json!({ "minAgeSeconds": s }),
            None => {
                json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
            }
        };
        let d = &d;
        async move {
            match d.invoke("sweeper", event).await {
                Outcome::Response(v) => v,
                other => panic!("the sweeper failed: {other:?}"),
            }
        }
    };
    let untouched = sweep(None).await;
    assert_eq!(untouched["reconciled"], json!([]), "{untouched}");
    assert_eq!(run(&d, &stopped).await["status"], "generating");
    let report = sweep(Some(0)).await;
    let reconciled: Vec<&str> = report["reconciled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert!(reconciled.contains(&stopped.as_str()), "{report}");
    assert!(
        reconciled.contains(&orphan.to_string().as_str()),
        "{report}"
    );
    let r = run(&d, &stopped).await;
    assert_eq!(r["status"], "cancelled", "{r:#}");
    let o = run(&d, &orphan.to_string()).await;
    assert_eq!(o["status"], "failed", "{o:#}");
    assert_eq!(o["envelope"]["reasons"][0]["code"], "WorkflowUnavailable");
    // Nothing is left for the next sweep.
    let again = sweep(Some(0)).await;
    assert_eq!(again["reconciled"], json!([]), "{again}");
    // A malformed request is refused by name.
    match d.invoke("sweeper", json!({"minAgeSeconds": "soon"})).await {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "InvalidInput"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_backed_agent_binaries_write_through_bedrock_and_a_throttle_is_retried_by_the_state_machine()
 {
    use campaign_tests::fake_bedrock::{FakeBedrock, Reply};
    const MODEL: &str = "amazon.nova-lite-v1:0";
    let bedrock = FakeBedrock::new(vec![Reply::Error(429, "ThrottlingException")]);
    let endpoint = bedrock.serve().await;
    let mut d = Deployment::start(&[]).await;
    // As the template sets them: BEDROCK_MODEL_ID per agent function; the endpoint is
    // the SDK's service-specific override.
    for agent in ["copy-agent", "social-agent", "visual-agent"] {
        d.deploy_with(
            agent,
            None,
            &[
                ("BEDROCK_MODEL_ID", MODEL),
                ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &endpoint),
            ],
        )
        .await;
    }
    let id = submit(&d, &campaign_tests::model_answers::descriptor_brief()).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let run = run(&d, &id).await;
    assert_eq!(run["envelope"]["outcome"], "success", "{run:#}");
    for a in run["artifacts"].as_array().unwrap() {
        assert_eq!(a["model"]["model"], MODEL, "{a:#}");
        assert!(a["model"]["completionTokens"].as_u64().unwrap() > 0);
    }
    let requests = bedrock.requests();
    assert_eq!(requests.len(), 4, "three agents and the one throttled call");
    assert!(requests.iter().all(|r| r.model == MODEL && r.streaming));
    // The throttled agent was retried by the state machine: its attempts say so.
    let attempts: u64 = ["copy", "social", "visual"]
        .iter()
        .map(|a| run["agents"][a]["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(attempts, 4, "{run:#}");
}

/// `(agent, status)` of every agent event of the run, in seq order.
async fn agent_steps(d: &Deployment, id: &str) -> Vec<(String, String)> {
    let (_, events) = d
        .http("GET", &format!("/campaigns/{id}/events?after=0"), None)
        .await;
    campaign_tests::agent_steps(events["events"].as_array().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_brand_kits_and_auto_mode_work_through_the_api_on_the_real_state_machine() {
    // The copy agent is slow; `auto` goes sequential above a p95 of 300 ms.
    let mut d = Deployment::start(&[("copy-agent", "copy=slow:700ms")]).await;
    d.deploy_with(
        "api",
        None,
        &[("MODE_POLICY", "p95-ms=300,window=3,min-samples=1")],
    )
    .await;
    let kit = json!({
        "brandId": "acme", "name": "Acme",
        "brandGuidelines": { "palette": ["#1B4332"], "toneAdjectives": ["rugged"] },
        "constraints": { "prohibitedTerms": ["on sale"] }
    });
    let (status, body) = d.http("POST", "/brands", Some(&kit)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(d.http("POST", "/brands", Some(&kit)).await.0, 409);
    assert_eq!(d.http("GET", "/brands/acme", None).await.1["version"], 1);
    assert_eq!(d.http("GET", "/brands/none", None).await.0, 404);

    // Sequential in the brief's order, the kit merged in: a Map over $.priority on moto.
    let mut brief = example_brief();
    brief["executionMode"] = json!("sequential");
    brief["priority"] = json!(["visual", "social", "copy"]);
    brief["brandId"] = json!("acme");
    let id = submit(&d, &brief).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let r = run(&d, &id).await;
    assert_eq!(r["status"], "completed", "{r:#}");
    assert_eq!(r["envelope"]["outcome"], "success", "{r:#}");
    assert_eq!(r["brief"]["brandVersion"], 1);
    assert_eq!(r["brief"]["brandGuidelines"]["palette"][0], "#1B4332");
    let steps = agent_steps(&d, &id).await;
    let started: Vec<&str> = steps
        .iter()
        .filter(|(_, s)| s == "generating")
        .map(|(a, _)| a.as_str())
        .collect();
    assert_eq!(started, ["visual", "social", "copy"], "{steps:?}");
    let visual_done = steps
        .iter()
        .position(|(a, s)| a == "visual" && s == "completed")
        .unwrap();
    let social_starts = steps
        .iter()
        .position(|(a, s)| a == "social" && s == "generating")
        .unwrap();
    assert!(
        visual_done < social_starts,
        "audited before the next: {steps:?}"
    );

    // The agent Lambdas recorded their latency in DynamoDB; the api Lambda reads it.
    let mut brief = example_brief();
    brief["executionMode"] = json!("auto");
    let id = submit(&d, &brief).await;
    assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
    let r = run(&d, &id).await;
    assert_eq!(r["executionMode"], "sequential", "{r:#}");
    let reason = r["modeDecision"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("copy p95 ") && reason.contains("> 300 ms"),
        "{reason}"
    );
    assert_eq!(r["status"], "completed");

    // The copy agent healthy again: auto goes back to parallel once the window is fast.
    d.deploy("copy-agent", None).await;
    let mut modes = Vec::new();
    for _ in 0..4 {
        let id = submit(&d, &brief).await;
        assert_eq!(d.execution_end(&id, FLOW_LIMIT).await, "SUCCEEDED");
        let r = run(&d, &id).await;
        modes.push(r["executionMode"].as_str().unwrap().to_string());
        if modes.last().unwrap() == "parallel" {
            assert!(
                r["modeDecision"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("within limits"),
                "{r:#}"
            );
            break;
        }
    }
    assert_eq!(
        modes.last().map(String::as_str),
        Some("parallel"),
        "{modes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_429_over_the_in_flight_and_per_client_limits_and_creates_nothing() {
    let mut d = Deployment::start(&[("copy-agent", "copy=slow:3s")]).await;
    d.deploy_with("api", None, &[("MAX_IN_FLIGHT", "1")]).await;
    let first = submit(&d, &example_brief()).await;
    let refused = d
        .http_response("POST", "/campaigns", Some(&example_brief()))
        .await;
    assert_eq!(refused["statusCode"], 429, "{refused}");
    assert!(
        refused["headers"]["retry-after"].as_str().is_some(),
        "{refused}"
    );
    let body: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("1 runs are in flight"),
        "{body}"
    );
    let (_, list) = d.http("GET", "/campaigns", None).await;
    assert_eq!(
        list["runs"].as_array().unwrap().len(),
        1,
        "nothing half-created: {list}"
    );
    // Once the run has ended there is room again.
    assert_eq!(d.execution_end(&first, FLOW_LIMIT).await, "SUCCEEDED");
    let deadline = std::time::Instant::now() + FLOW_LIMIT;
    while run(&d, &first).await["status"] != "completed" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = submit(&d, &example_brief()).await;
    assert_eq!(d.execution_end(&second, FLOW_LIMIT).await, "SUCCEEDED");

    // Per client: RATE 1, BURST 3 — windows of 3 s admitting 3 each.
    d.deploy("copy-agent", None).await;
    d.deploy_with("api", None, &[("RATE_LIMIT", "1/3")]).await;
    let (mut accepted, mut limited) = (Vec::new(), 0);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let r = d
            .http_response("POST", "/campaigns", Some(&example_brief()))
            .await;
        match r["statusCode"].as_u64() {
            Some(202) => accepted.push(r),
            Some(429) => {
                assert!(r["headers"]["retry-after"].as_str().is_some(), "{r}");
                limited += 1;
            }
            other => panic!("{other:?}: {r}"),
        }
    }
    // Requests spread over t seconds touch at most floor(t / 3) + 2 windows of 3 each; on
    // a slow machine the refusal is only certain while that is under the 10 requests.
    let windows = (started.elapsed().as_secs_f64() / 3.0).floor() as usize + 2;
    assert!(
        accepted.len() <= 3 * windows,
        "accepted {} in {windows} windows",
        accepted.len()
    );
    if 3 * windows < 10 {
        assert!(
            limited >= 1,
            "accepted {}, limited {limited}",
            accepted.len()
        );
    }
    let (_, list) = d.http("GET", "/campaigns?limit=100", None).await;
    assert_eq!(
        list["runs"].as_array().unwrap().len(),
        2 + accepted.len(),
        "every accepted run exists, no refused one does"
    );
}
