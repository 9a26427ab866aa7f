//! The OpenAPI document matches the server: every answer of the local API in these flows
//! (every route, the error statuses, the run in each terminal state) is documented and
//! validates against the published schemas, and so does `campaign run --json`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::{Command, Stdio};
use std::time::Duration;

use campaign_tests::openapi::Spec;
use campaign_tests::runtime_api::binary;
use campaign_tests::{TestServer, example_brief};
use serde_json::{Value, json};

/// Sends a request and checks the answer against the document; returns (status, body).
async fn call(
    s: &TestServer,
    spec: &Spec,
    method: &str,
    route: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = match method {
        "GET" => s.http.get(s.url(path)),
        "PUT" => s.http.put(s.url(path)),
        "DELETE" => s.http.delete(s.url(path)),
        _ => s.http.post(s.url(path)),
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    spec.check(method, route, status, &ct, &body);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_local_api_is_described_by_the_openapi_document() {
    let spec = Spec::default();
    let s = TestServer::start(&["social=error"]).await;
    let (_, accepted) = call(
        &s,
        &spec,
        "POST",
        "/campaigns",
        "/campaigns",
        Some(&example_brief()),
    )
    .await;
    let id = accepted["runId"].as_str().unwrap().to_string();
    s.wait_terminal(&id).await;
    let run = format!("/campaigns/{id}");
    let (status, partial) = call(&s, &spec, "GET", "/campaigns/{runId}", &run, None).await;
    assert_eq!(
        (status, partial["envelope"]["outcome"].as_str()),
        (200, Some("partial"))
    );
    call(
        &s,
        &spec,
        "GET",
        "/campaigns/{runId}/events",
        &format!("{run}/events?after=2"),
        None,
    )
    .await;
    call(&s, &spec, "GET", "/campaigns", "/campaigns?limit=5", None).await;
    assert_eq!(
        call(&s, &spec, "GET", "/campaigns", "/campaigns?limit=0", None)
            .await
            .0,
        400
    );
    assert_eq!(
        call(
            &s,
            &spec,
            "POST",
            "/campaigns/{runId}/cancel",
            &format!("{run}/cancel"),
            None
        )
        .await
        .0,
        409
    );
    let (status, child) = call(
        &s,
        &spec,
        "POST",
        "/campaigns/{runId}/retry",
        &format!("{run}/retry"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, 202);
    s.wait_terminal(child["runId"].as_str().unwrap()).await;
    assert_eq!(
        call(
            &s,
            &spec,
            "POST",
            "/campaigns/{runId}/retry",
            &format!("{run}/retry"),
            Some(&json!({"agents": ["tiktok"]}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            &s,
            &spec,
            "GET",
            "/campaigns/{runId}",
            "/campaigns/not-a-ulid",
            None
        )
        .await
        .0,
        400
    );
    assert_eq!(
        call(
            &s,
            &spec,
            "GET",
            "/campaigns/{runId}",
            "/campaigns/01JD5Z8X7Q2M4N6P8R0S2T4V6W",
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &s,
            &spec,
            "GET",
            "/campaigns/{runId}/events",
            "/campaigns/01JD5Z8X7Q2M4N6P8R0S2T4V6W/events",
            None
        )
        .await
        .0,
        404
    );
    let (status, invalid) = call(
        &s,
        &spec,
        "POST",
        "/campaigns",
        "/campaigns",
        Some(&json!({"objective": ""})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!invalid["errors"].as_array().unwrap().is_empty());
    let huge =
        json!({"objective": "x".repeat(70 * 1024), "audience": "a", "product": "p", "tone": "t"});
    assert_eq!(
        call(&s, &spec, "POST", "/campaigns", "/campaigns", Some(&huge))
            .await
            .0,
        413
    );
    call(&s, &spec, "GET", "/healthz", "/healthz", None).await;
    call(&s, &spec, "GET", "/openapi.json", "/openapi.json", None).await;
    call(&s, &spec, "GET", "/metrics", "/metrics", None).await;
    let r = s
        .http
        .post(s.url("/campaigns"))
        .header("idempotency-key", "k")
        .json(&example_brief())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = s
        .http
        .post(s.url("/campaigns"))
        .header("idempotency-key", "k")
        .json(&json!({"objective": "o", "audience": "a", "product": "p", "tone": "t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    spec.check(
        "POST",
        "/campaigns",
        422,
        "application/problem+json",
        &r.json().await.unwrap(),
    );
    let etag = s.http.get(s.url(&run)).send().await.unwrap().headers()["etag"].clone();
    let r = s
        .http
        .get(s.url(&run))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    spec.check(
        "GET",
        "/campaigns/{runId}",
        r.status().as_u16(),
        "",
        &Value::Null,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_validates_in_every_terminal_state() {
    let spec = Spec::default();
    for (faults, want) in [
        (&[][..], "success"),
        (&["visual=error"][..], "partial"),
        (
            &["copy=error", "social=error", "visual=error"][..],
            "failure",
        ),
    ] {
        let s = TestServer::start(faults).await;
        let id = s.submit(&example_brief()).await;
        let run = s.wait_terminal(&id).await;
        assert_eq!(run["envelope"]["outcome"], want);
        spec.check_schema("Run", &run);
    }
    let slow = TestServer::start(&["copy=slow:2s"]).await;
    let id = slow.submit(&example_brief()).await;
    let (status, cancelled) = slow
        .post(&format!("/campaigns/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    spec.check(
        "POST",
        "/campaigns/{runId}/cancel",
        200,
        "application/json",
        &cancelled,
    );
    let parked = TestServer::start(&["audit=unavailable"]).await;
    let id = parked.submit(&example_brief()).await;
    let run = parked
        .wait_for(&id, "audit_pending", |r| r["status"] == "audit_pending")
        .await;
    spec.check_schema("Run", &run);
}

/// `campaign run --json` with `faults`, and SIGINT after `interrupt` if given: its output.
fn campaign_run(faults: &[&str], interrupt: Option<Duration>) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary("campaign"));
    cmd.arg("run")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/brief.json"
        ))
        .arg("--json")
        .arg("--db")
        .arg(dir.path().join("c.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for f in faults {
        cmd.arg("--fault").arg(f);
    }
    let child = cmd.spawn().unwrap();
    if let Some(after) = interrupt {
        std::thread::sleep(after);
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn campaign_run_json_prints_a_valid_run_in_every_terminal_state() {
    let spec = Spec::default();
    for (faults, interrupt, status) in [
        (&[][..], None, "completed"),
        (&["social=error"][..], None, "completed"),
        (
            &["copy=error", "social=error", "visual=error"][..],
            None,
            "failed",
        ),
        (&["audit=unavailable"][..], None, "audit_pending"),
        (
            &["copy=slow:5s"][..],
            Some(Duration::from_millis(1500)),
            "cancelled",
        ),
    ] {
        let run = campaign_run(faults, interrupt);
        assert_eq!(run["status"], status, "{faults:?}: {run:#}");
        spec.check_schema("Run", &run);
    }
}

#[test]
fn the_document_refuses_what_the_server_never_sends() {
    let spec = Spec::default();
    let run = campaign_run(&[], None);
    let refused = |mutate: &dyn Fn(&mut Value)| {
        let mut bad = run.clone();
        mutate(&mut bad);
        std::panic::catch_unwind(|| spec.check_schema("Run", &bad)).is_err()
    };
    assert!(refused(&|r| r["agents"]["copy"]["verdict"] = json!("great")));
    assert!(refused(&|r| r["agents"]["copy"]["mood"] = json!("happy")));
    assert!(refused(
        &|r| r["artifacts"][0]["content"] = json!({"headline": "only"})
    ));
    assert!(refused(&|r| r["envelope"]["outcome"] = json!("meh")));
    assert!(refused(&|r| {
        r.as_object_mut().unwrap().remove("timings");
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brand_library_and_an_auto_run_are_described_by_the_openapi_document() {
    let spec = Spec::default();
    let s = TestServer::start(&[]).await;
    let kit = json!({
        "brandId": "acme", "name": "Acme",
        "brandGuidelines": { "palette": ["teal"], "toneAdjectives": ["bold"] },
        "constraints": { "prohibitedTerms": ["cheap"] }
    });
    let expect = [
        ("POST", "/brands", "/brands", Some(kit.clone()), 201),
        ("POST", "/brands", "/brands", Some(kit.clone()), 409),
        (
            "POST",
            "/brands",
            "/brands",
            Some(json!({"brandId": "x", "name": 5})),
            400,
        ),
        ("GET", "/brands", "/brands", None, 200),
        ("GET", "/brands/{brandId}", "/brands/acme", None, 200),
        ("GET", "/brands/{brandId}", "/brands/none", None, 404),
        (
            "GET",
            "/brands/{brandId}",
            "/brands/NOT%20AN%20ID",
            None,
            400,
        ),
        (
            "PUT",
            "/brands/{brandId}",
            "/brands/acme",
            Some(json!({"version": 9})),
            409,
        ),
        (
            "PUT",
            "/brands/{brandId}",
            "/brands/acme",
            Some(json!({"version": 1, "name": "Acme 2"})),
            200,
        ),
        (
            "PUT",
            "/brands/{brandId}",
            "/brands/none",
            Some(json!({})),
            404,
        ),
    ];
    for (method, route, path, body, status) in expect {
        assert_eq!(
            call(&s, &spec, method, route, path, body.as_ref()).await.0,
            status,
            "{method} {path}"
        );
    }
    let mut brief = example_brief();
    brief["executionMode"] = json!("auto");
    brief["brandId"] = json!("acme");
    brief["priority"] = json!(["visual"]);
    let (status, accepted) =
        call(&s, &spec, "POST", "/campaigns", "/campaigns", Some(&brief)).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["runId"].as_str().unwrap();
    s.wait_terminal(id).await;
    let (_, run) = call(
        &s,
        &spec,
        "GET",
        "/campaigns/{runId}",
        &format!("/campaigns/{id}"),
        None,
    )
    .await;
    assert_eq!(run["brief"]["brandVersion"], 2);
    assert!(run["modeDecision"].is_object(), "{run}");
    call(
        &s,
        &spec,
        "GET",
        "/campaigns/{runId}/events",
        &format!("/campaigns/{id}/events"),
        None,
    )
    .await;
    let r = s.http.delete(s.url("/brands/acme")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        call(
            &s,
            &spec,
            "DELETE",
            "/brands/{brandId}",
            "/brands/acme",
            None
        )
        .await
        .0,
        404
    );
}

/// The check every test helper runs on the server's answers does fail on an answer the
/// document does not describe (here a 202 without its run id), so the helpers' silence
/// means something.
#[test]
#[should_panic(expected = "POST /campaigns 202")]
fn the_answer_check_refuses_an_undocumented_answer() {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    Spec::shared().check_answer(
        "POST",
        "/campaigns?oversize=reject",
        202,
        &headers,
        &serde_json::json!({"status": "queued"}),
    );
}
