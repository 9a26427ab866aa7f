//! The brief's run options over the local HTTP API (a real server on loopback, a real
//! SQLite file, the real statemachine.asl.json): `priority` (the sequential order and the
//! order of audit), `executionMode: "auto"` switching on recorded agent latency and back,
//! the server's default mode, and the brand library (`/brands`, `brandId`).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use campaign_shared::domain::ModePolicy;
use campaign_tests::{TestServer, agent_steps, example_brief, local_config};
use serde_json::{Value, json};

/// The agents in the order they first reached `status`.
fn order_of(events: &[Value], status: &str) -> Vec<String> {
    agent_steps(events)
        .into_iter()
        .filter(|(_, s)| s == status)
        .map(|(a, _)| a)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_run_follows_its_priority_and_a_parallel_one_audits_in_it() {
    let s = TestServer::start(&[]).await;
    let mut brief = example_brief();
    brief["executionMode"] = json!("sequential");
    brief["priority"] = json!(["visual", "copy"]);
    let id = s.submit(&brief).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(
        run["brief"]["priority"],
        json!(["visual", "copy", "social"])
    );
    let events = s.events(&id, 0).await;
    assert_eq!(
        order_of(&events, "generating"),
        ["visual", "copy", "social"]
    );
    // Sequential: each agent is audited before the next one starts.
    let steps = agent_steps(&events);
    let visual_done = steps
        .iter()
        .position(|x| *x == ("visual".into(), "completed".into()))
        .unwrap();
    let copy_starts = steps
        .iter()
        .position(|x| *x == ("copy".into(), "generating".into()))
        .unwrap();
    assert!(visual_done < copy_starts, "{steps:?}");

    // Parallel: the one audit records the agents in priority order.
    let mut brief = example_brief();
    brief["priority"] = json!(["social", "visual", "copy"]);
    let id = s.submit(&brief).await;
    assert_eq!(s.wait_terminal(&id).await["status"], "completed");
    let events = s.events(&id, 0).await;
    assert_eq!(order_of(&events, "completed"), ["social", "visual", "copy"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_priority_is_refused_naming_the_entry_and_what_is_allowed() {
    let s = TestServer::start(&[]).await;
    for (priority, field, says) in [
        (json!(["copy", "copy"]), "priority[1]", "a second time"),
        (json!(["copy", "banner"]), "priority[1]", "not an agent"),
        (json!("copy"), "priority", "must be an array"),
        (json!([3]), "priority[0]", "must be a string"),
    ] {
        let mut brief = example_brief();
        brief["priority"] = priority.clone();
        let (status, body) = s.post("/campaigns", &brief).await;
        assert_eq!(status, 400, "{priority}: {body}");
        let v = &body["errors"][0];
        assert_eq!(v["field"], field, "{body}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(says), "{msg}");
        assert!(msg.contains("copy, social and visual"), "{msg}");
    }
    let (_, list) = s.get("/campaigns").await;
    assert_eq!(list["runs"], json!([]), "nothing was created");
}

fn auto_policy() -> ModePolicy {
    ModePolicy {
        p95_ms: 150,
        window: 3,
        min_samples: 1,
        ..ModePolicy::default()
    }
}

async fn auto_server(dir: tempfile::TempDir, faults: &[&str]) -> TestServer {
    let mut cfg = local_config(dir.path(), faults, campaign_tests::TIME_SCALE);
    cfg.mode_policy = auto_policy();
    TestServer::start_config(dir, cfg).await
}

/// Runs an `auto` brief to its end; returns the run.
async fn auto_run(s: &TestServer) -> Value {
    let mut brief = example_brief();
    brief["executionMode"] = json!("auto");
    let id = s.submit(&brief).await;
    s.wait_terminal(&id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_goes_sequential_when_an_agent_is_slow_and_back_when_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let s = auto_server(dir, &["copy=slow:400ms"]).await;
    // Nothing recorded yet: parallel, and the run says why.
    let first = auto_run(&s).await;
    assert_eq!(first["executionMode"], "parallel", "{first:#}");
    assert_eq!(first["brief"]["executionMode"], "auto");
    assert_eq!(first["modeDecision"]["mode"], "parallel");
    assert_eq!(
        first["modeDecision"]["reason"],
        "no recent agent figures yet"
    );
    // The slow copy agent's calls are now on record: the next auto run goes sequential.
    let second = auto_run(&s).await;
    assert_eq!(second["executionMode"], "sequential", "{second:#}");
    let d = &second["modeDecision"];
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.starts_with("copy p95 "), "{reason}");
    assert!(reason.contains("> 150 ms"), "{reason}");
    assert!(
        d["figures"]["copy"]["p95Ms"].as_u64().unwrap() >= 400,
        "{d}"
    );
    assert_eq!(d["thresholds"]["p95Ms"], 150);
    assert_eq!(second["status"], "completed");
    // The decision is in the run's first event too.
    let id = second["runId"].as_str().unwrap();
    let first_event = &s.events(id, 0).await[0];
    assert_eq!(first_event["detail"]["executionMode"], "sequential");
    assert_eq!(first_event["detail"]["modeDecision"]["reason"], reason);
    // The summary lists the mode as run.
    let (_, list) = s.get("/campaigns?limit=1").await;
    assert_eq!(list["runs"][0]["executionMode"], "sequential");

    // The same store, the agent healthy again: once the window holds fast calls only,
    // auto runs go back to parallel (the figures live in the store, not the process).
    let TestServer { served, dir, .. } = s;
    served.stop().await;
    let s = auto_server(dir, &[]).await;
    let mut modes = Vec::new();
    for _ in 0..5 {
        let run = auto_run(&s).await;
        assert_eq!(run["status"], "completed");
        modes.push(run["executionMode"].as_str().unwrap().to_string());
        if modes.last().unwrap() == "parallel" {
            break;
        }
    }
    assert_eq!(modes.first().unwrap(), "sequential", "{modes:?}");
    assert_eq!(modes.last().unwrap(), "parallel", "{modes:?}");
    assert!(modes.len() <= 4, "window of 3: {modes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_default_mode_applies_to_briefs_that_do_not_choose() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local_config(dir.path(), &[], campaign_tests::TIME_SCALE);
    cfg.mode_policy = ModePolicy::parse_spec("default=sequential").unwrap();
    let s = TestServer::start_config(dir, cfg).await;
    let mut brief = example_brief();
    brief.as_object_mut().unwrap().remove("executionMode");
    let id = s.submit(&brief).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["executionMode"], "sequential");
    assert_eq!(run["brief"]["executionMode"], "sequential");
    let mut brief = example_brief();
    brief["executionMode"] = json!("parallel");
    let id = s.submit(&brief).await;
    assert_eq!(s.wait_terminal(&id).await["executionMode"], "parallel");
}

async fn send(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = s.http.request(method, s.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brand_kits_are_managed_over_http_and_a_run_records_the_version_it_used() {
    use reqwest::Method;
    let s = TestServer::start(&[]).await;
    let kit = json!({
        "brandId": "acme-outdoor",
        "name": "Acme Outdoor",
        "brandGuidelines": { "toneAdjectives": ["rugged"], "palette": ["#1B4332", "sand"] },
        "constraints": { "prohibitedTerms": ["on sale"], "maxLength": { "social": 200 } }
    });
    let (st, created) = send(&s, Method::POST, "/brands", Some(kit.clone())).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["version"], 1);
    let (st, body) = send(&s, Method::POST, "/brands", Some(kit.clone())).await;
    assert_eq!(st, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("already exists"));
    let (st, body) = send(
        &s,
        Method::POST,
        "/brands",
        Some(json!({ "brandId": "Bad Id", "brandGuidelines": { "palette": ["#12"] } })),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["title"], "Invalid brand kit");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["brandId", "brandGuidelines.palette[0]"]);
    let (st, got) = s.get("/brands/acme-outdoor").await;
    assert_eq!((st, &got["name"]), (200, &json!("Acme Outdoor")));
    assert_eq!(s.get("/brands/nobody").await.0, 404);
    assert_eq!(
        s.get("/brands").await.1["brands"][0]["brandId"],
        "acme-outdoor"
    );

    // A brief naming the kit: its guidelines merged in, its version recorded.
    let mut brief = example_brief();
    brief["brandId"] = json!("acme-outdoor");
    brief["brandGuidelines"] = json!({ "palette": ["#FFFFFF"] });
    brief["constraints"] = json!({ "maxLength": { "copy": 900 } });
    let id = s.submit(&brief).await;
    let run = s.wait_terminal(&id).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    let b = &run["brief"];
    assert_eq!(
        (&b["brandId"], &b["brandVersion"]),
        (&json!("acme-outdoor"), &json!(1))
    );
    assert_eq!(
        b["brandGuidelines"]["palette"],
        json!(["#1B4332", "sand", "#FFFFFF"])
    );
    assert!(
        b["brandGuidelines"]["toneAdjectives"]
            .as_array()
            .unwrap()
            .contains(&json!("rugged"))
    );
    assert_eq!(b["constraints"]["prohibitedTerms"], json!(["on sale"]));
    // The kit's length limit where the brief sets none; the brief's own where it does.
    assert_eq!(b["constraints"]["maxLength"]["social"], 200);
    assert_eq!(b["constraints"]["maxLength"]["copy"], 900);

    // Replacing the kit: a stale version is refused, the right one makes version 2.
    let mut v2 = kit.clone();
    v2["brandGuidelines"]["palette"] = json!(["#000000"]);
    v2["version"] = json!(7);
    let (st, body) = send(&s, Method::PUT, "/brands/acme-outdoor", Some(v2.clone())).await;
    assert_eq!(st, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("version 1, not 7"),
        "{body}"
    );
    v2["version"] = json!(1);
    let (st, body) = send(&s, Method::PUT, "/brands/acme-outdoor", Some(v2.clone())).await;
    assert_eq!((st, &body["version"]), (200, &json!(2)), "{body}");
    assert_eq!(
        send(&s, Method::PUT, "/brands/nobody", Some(json!({})))
            .await
            .0,
        404
    );

    // A retry reuses the kit version its parent used, not the new one.
    let (st, body) = s
        .post(
            &format!("/campaigns/{id}/retry"),
            &json!({ "agents": ["visual"] }),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let retry = s.wait_terminal(body["runId"].as_str().unwrap()).await;
    assert_eq!(retry["brief"]["brandVersion"], 1);
    assert_eq!(
        retry["brief"]["brandGuidelines"]["palette"],
        json!(["#1B4332", "sand", "#FFFFFF"])
    );
    // A new brief gets version 2.
    let mut brief = example_brief();
    brief["brandId"] = json!("acme-outdoor");
    let run = s.wait_terminal(&s.submit(&brief).await).await;
    assert_eq!(run["brief"]["brandVersion"], 2);
    assert_eq!(
        run["brief"]["brandGuidelines"]["palette"],
        json!(["#000000", "teal", "#FF8800", "ivory"]),
        "the kit's palette first, then the brief's own"
    );

    // Deleted: gone, and briefs naming it are refused with the way out.
    assert_eq!(
        send(&s, Method::DELETE, "/brands/acme-outdoor", None)
            .await
            .0,
        204
    );
    assert_eq!(
        send(&s, Method::DELETE, "/brands/acme-outdoor", None)
            .await
            .0,
        404
    );
    let (st, body) = s.post("/campaigns", &brief).await;
    assert_eq!(st, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("POST /brands"),
        "{body}"
    );
    let mut brief = example_brief();
    brief["brandVersion"] = json!(1);
    let (st, body) = s.post("/campaigns", &brief).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "brandVersion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_goes_sequential_when_an_agents_model_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = local_config(dir.path(), &["copy=throttle:2"], campaign_tests::TIME_SCALE);
    cfg.mode_policy =
        ModePolicy::parse_spec("p95-ms=60000,throttle-rate=0.2,window=5,min-samples=1").unwrap();
    let s = TestServer::start_config(dir, cfg).await;
    // The copy agent's model refuses twice; the flow retries it (Transient) and it writes.
    let first = auto_run(&s).await;
    assert_eq!(first["executionMode"], "parallel");
    assert_eq!(first["status"], "completed", "{first:#}");
    assert_eq!(first["agents"]["copy"]["attempts"], 3, "{first:#}");
    // Two of the copy agent's three calls were throttled: over 20%, so sequential.
    let second = auto_run(&s).await;
    assert_eq!(second["executionMode"], "sequential", "{second:#}");
    let d = &second["modeDecision"];
    assert_eq!(d["reason"], "copy throttled 2/3 > 20%", "{d}");
    assert_eq!(d["figures"]["copy"]["throttled"], 2);
    assert_eq!(d["figures"]["copy"]["samples"], 3);
}
