//! The local engine end to end, over real loopback HTTP and WebSocket: the server runs
//! `statemachine.asl.json` on the in-process ASL engine with a real SQLite file.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use campaign_tests::{TestServer, agent_artifact_ids, assert_gapless, example_brief};
use serde_json::{Value, json};

fn assert_completed_with_three_audited_artifacts(run: &Value) {
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["envelope"]["outcome"], "success", "{run:#}");
    let artifacts = run["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3);
    for a in artifacts {
        assert!(
            a["audit"]["verdict"].is_string(),
            "unaudited artifact: {a:#}"
        );
        assert_ne!(a["audit"]["verdict"], "fail", "{a:#}");
    }
    for agent in ["copy", "social", "visual"] {
        assert_eq!(run["agents"][agent]["status"], "completed");
    }
    assert!(run["timings"]["totalMs"].is_u64());
    assert!(run["timings"]["timeToFirstArtifactMs"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_campaign_completes_with_three_audited_artifacts() {
    let s = TestServer::start(&[]).await;
    let id = s.submit(&example_brief()).await;
    let run = s.wait_terminal(&id).await;
    assert_completed_with_three_audited_artifacts(&run);
    assert_eq!(run["executionMode"], "parallel");
    assert_eq!(run["iteration"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_campaign_generates_and_audits_one_agent_after_another() {
    let s = TestServer::start(&[]).await;
    let mut brief = example_brief();
    brief["executionMode"] = json!("sequential");
    let id = s.submit(&brief).await;
    let run = s.wait_terminal(&id).await;
    assert_completed_with_three_audited_artifacts(&run);
    // Each agent is audited before the next one starts generating.
    let events = s.events(&id, 0).await;
    let pos = |scope: &str, status: &str| {
        events
            .iter()
            .position(|e| e["scope"] == scope && e["status"] == status)
            .unwrap()
    };
    assert!(pos("copy", "completed") < pos("social", "generating"));
    assert!(pos("social", "completed") < pos("visual", "generating"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_arrive_in_order_over_websocket_and_replay_returns_exactly_the_missed_ones()
 {
    let s = TestServer::start(&["visual=slow:300ms"]).await;
    let id = s.submit(&example_brief()).await;
    let pushed = s.ws_collect(&id, 0).await;
    assert_gapless(&pushed, 1);
    assert_eq!(pushed[0]["status"], "queued");
    let last = pushed.last().unwrap();
    assert_eq!(
        (last["scope"].as_str(), last["status"].as_str()),
        (Some("run"), Some("completed"))
    );
    // The run moves through the documented lifecycle, in order.
    let run_statuses: Vec<&str> = pushed
        .iter()
        .filter(|e| e["scope"] == "run")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        run_statuses,
        vec!["queued", "generating", "generated", "auditing", "completed"]
    );
    // Replay after a seq returns exactly the later events, identical to what was pushed.
    let after = 4;
    let replay = s.events(&id, after).await;
    assert_eq!(replay, pushed[after as usize..].to_vec());
    // A late subscriber with `after` gets only what it missed.
    let late = s.ws_collect(&id, after).await;
    assert_eq!(late, replay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_route_streams_server_sent_events() {
    let s = TestServer::start(&[]).await;
    let id = s.submit(&example_brief()).await;
    let r = s
        .http
        .get(s.url(&format!("/campaigns/{id}/events")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .unwrap()
        .unwrap();
    let data = campaign_tests::sse_data(&body);
    assert_gapless(&data, 1);
    assert_eq!(data.last().unwrap()["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_agent_makes_the_run_partial_and_a_retry_reruns_only_that_agent() {
    let s = TestServer::start(&["social=error"]).await;
    let id = s.submit(&example_brief()).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["envelope"]["outcome"], "partial", "{run:#}");
    assert_eq!(run["agents"]["social"]["status"], "failed");
    assert_eq!(run["agents"]["social"]["error"]["code"], "AgentFailed");
    // The engine hands the Catch Step Functions' `{Error, Cause}` (Cause: the function's
    // error document); the stored reason is its message, as on AWS.
    assert_eq!(
        run["agents"]["social"]["error"]["message"],
        "injected fault: the social agent failed"
    );
    assert_eq!(run["envelope"]["reasons"][0]["agent"], "social");
    assert_eq!(run["envelope"]["retry"]["agents"], json!(["social"]));
    assert_eq!(run["artifacts"].as_array().unwrap().len(), 2);
    let parent_ids = agent_artifact_ids(&run);

    // The fault is still injected, so the retry fails social again — but it must re-run
    // only social and reuse the other two artifacts with their original ids.
    let (status, body) = s.post(&format!("/campaigns/{id}/retry"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    let child_id = body["runId"].as_str().unwrap().to_string();
    assert_ne!(child_id, id);
    let child = s.wait_terminal(&child_id).await;
    assert_eq!(child["iteration"], 2);
    assert_eq!(child["parentRunId"], id.as_str());
    let child_ids = agent_artifact_ids(&child);
    assert_eq!(child_ids, parent_ids, "reused artifacts keep their ids");
    let events = s.events(&child_id, 0).await;
    let generating: Vec<&str> = events
        .iter()
        .filter(|e| e["status"] == "generating" && e["scope"] != "run")
        .map(|e| e["scope"].as_str().unwrap())
        .collect();
    assert_eq!(generating, vec!["social"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_fault_clears_delivers_the_missing_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir, &["visual=error"]).await;
    let id = s.submit(&example_brief()).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["envelope"]["outcome"], "partial");
    let parent = agent_artifact_ids(&run);
    let dir = s.dir;
    s.served.stop().await;
    // Restart on the same database without the fault.
    let s = TestServer::start_in(dir, &[]).await;
    let (status, body) = s
        .post(
            &format!("/campaigns/{id}/retry"),
            &json!({"agents": ["visual"]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let child = s.wait_terminal(body["runId"].as_str().unwrap()).await;
    assert_eq!(child["envelope"]["outcome"], "success", "{child:#}");
    let ids = agent_artifact_ids(&child);
    assert_eq!(ids.len(), 3);
    assert_eq!(&ids[..2], &parent[..2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_or_panicking_agent_fails_alone() {
    let s = TestServer::start(&["copy=timeout", "visual=panic"]).await;
    let id = s.submit(&example_brief()).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["envelope"]["outcome"], "partial", "{run:#}");
    assert_eq!(run["agents"]["copy"]["error"]["code"], "States.Timeout");
    assert_eq!(run["agents"]["visual"]["error"]["code"], "AgentFailed");
    assert_eq!(run["agents"]["social"]["status"], "completed");
    let retry: Vec<&str> = run["envelope"]["retry"]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(retry, vec!["copy", "visual"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_failing_fails_the_run() {
    let s = TestServer::start(&["copy=error", "social=error", "visual=error"]).await;
    let id = s.submit(&example_brief()).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["envelope"]["outcome"], "failure");
    assert_eq!(
        run["envelope"]["retry"]["agents"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_run_keeps_completed_artifacts_and_emits_nothing_after_the_terminal_event() {
    let s = TestServer::start(&["visual=slow:800ms"]).await;
    let id = s.submit(&example_brief()).await;
    s.wait_for(&id, "copy generated", |r| {
        r["agents"]["copy"]["artifactId"].is_string()
    })
    .await;
    let r = s
        .http
        .post(s.url(&format!("/campaigns/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["status"], "cancelled");
    assert_eq!(run["envelope"]["outcome"], "cancelled");
    assert!(
        run["agents"]["copy"]["artifactId"].is_string(),
        "completed artifact kept: {run:#}"
    );
    assert!(
        run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["agent"] == "copy")
    );
    let events = s.events(&id, 0).await;
    // Wait past the slow agent: it must not write anything once the run is closed.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = s.events(&id, 0).await;
    assert_eq!(events, later, "no event after the terminal one");
    assert_gapless(&later, 1);
    let last = later.last().unwrap();
    assert_eq!(
        (last["scope"].as_str(), last["status"].as_str()),
        (Some("run"), Some("cancelled"))
    );
    // Cancelling again is a conflict.
    let again = s
        .http
        .post(s.url(&format!("/campaigns/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(again.headers()["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_audit_parks_the_run_and_the_deferred_audit_completes_it_later() {
    let s = TestServer::start(&["audit=unavailable"]).await;
    let id = s.submit(&example_brief()).await;
    let run = s
        .wait_for(&id, "audit_pending", |r| r["status"] == "audit_pending")
        .await;
    assert!(run["envelope"].is_null());
    for agent in ["copy", "social", "visual"] {
        assert_eq!(run["agents"][agent]["status"], "audit_pending");
    }
    // Still pending after several deferred attempts while the audit is down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, still) = s.get(&format!("/campaigns/{id}")).await;
    assert_eq!(still["status"], "audit_pending");
    s.served.app.set_audit_unavailable(false);
    let run = s.wait_terminal(&id).await;
    assert_completed_with_three_audited_artifacts(&run);
    assert_gapless(&s.events(&id, 0).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_brief_is_rejected_with_every_violation() {
    let s = TestServer::start(&[]).await;
    let brief: Value =
        serde_json::from_str(include_str!("../../examples/invalid-brief.json")).unwrap();
    let r = s
        .http
        .post(s.url("/campaigns"))
        .json(&brief)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in [
        "objective",
        "product",
        "constraints.maxLength.social",
        "brandGuidelines.palette[0]",
        "budget",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    // Nothing was created.
    let (_, list) = s.get("/campaigns").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_brief_is_rejected_with_413_and_guidance() {
    let s = TestServer::start(&[]).await;
    let mut brief = example_brief();
    brief["audience"] = json!("a".repeat(70 * 1024));
    let r = s
        .http
        .post(s.url("/campaigns"))
        .json(&brief)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("`audience`") && detail.contains("500 characters"),
        "{detail}"
    );
    // Far larger bodies get a 413 too, not a dropped connection.
    brief["audience"] = json!("a".repeat(2 * 1024 * 1024));
    let r = s
        .http
        .post(s.url("/campaigns"))
        .json(&brief)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_unknown_runs_and_listing_behave() {
    let s = TestServer::start(&[]).await;
    assert_eq!(s.get("/campaigns/not-an-id").await.0, 400);
    assert_eq!(s.get("/campaigns/01JD5Z8X7Q2M4N6P8R0S2T4V6W").await.0, 404);
    let a = s.submit(&example_brief()).await;
    let b = s.submit(&example_brief()).await;
    s.wait_terminal(&a).await;
    s.wait_terminal(&b).await;
    let (_, page) = s.get("/campaigns?limit=1").await;
    assert_eq!(page["runs"][0]["runId"], b.as_str(), "newest first");
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, page2) = s.get(&format!("/campaigns?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["runs"][0]["runId"], a.as_str());
    assert_eq!(s.get("/campaigns?limit=0").await.0, 400);
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let metrics = s.metrics().await;
    // Process-wide counters (every server of this test process shares the recorder).
    let successes: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("campaign_runs_total{outcome=\"success\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(successes >= 2.0, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_running_run_is_a_conflict() {
    let s = TestServer::start(&["copy=slow:500ms"]).await;
    let id = s.submit(&example_brief()).await;
    let (status, _) = s.post(&format!("/campaigns/{id}/retry"), &json!({})).await;
    assert_eq!(status, 409);
    let (status, body) = s
        .post(
            &format!("/campaigns/{id}/retry"),
            &json!({"agents": ["tiktok"]}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    s.wait_terminal(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_with_palette_descriptors_runs_in_both_modes_with_the_stand_in_colors_recorded() {
    let s = TestServer::start(&[]).await;
    for mode in ["parallel", "sequential"] {
        let mut brief = example_brief();
        brief["executionMode"] = json!(mode);
        brief["brandGuidelines"]["palette"] =
            json!(["deep navy", "warm sunset orange", "muted sage"]);
        let id = s.submit(&brief).await;
        let run = s.wait_terminal(&id).await;
        assert_eq!(run["status"], "completed", "{mode}: {run:#}");
        assert_eq!(run["brief"]["brandGuidelines"]["palette"][0], "deep navy");
        let visual = run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent"] == "visual")
            .unwrap();
        let used: Vec<&str> = visual["content"]["palette"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["hex"].as_str().unwrap())
            .collect();
        let navy = campaign_shared::domain::palette::parse_color("deep navy")
            .unwrap()
            .hex;
        assert!(used.contains(&navy.as_str()), "{mode}: {used:?}");
        let notes: Vec<&str> = visual["audit"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "palette" && f["severity"] == "warning")
            .map(|f| f["message"].as_str().unwrap())
            .collect();
        for d in ["deep navy", "warm sunset orange", "muted sage"] {
            assert!(notes.iter().any(|n| n.contains(d)), "{mode}: {notes:?}");
        }
        assert_eq!(visual["audit"]["verdict"], "warn");
    }
}
