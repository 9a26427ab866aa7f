//! HTTP conventions of the API, over real loopback HTTP: conditional GETs, resumable SSE,
//! `Retry-After`, idempotent POSTs.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use campaign_tests::{TestServer, assert_gapless, example_brief};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_polled_with_if_none_match_is_not_modified_until_it_changes() {
    let s = TestServer::start(&[]).await;
    let id = s.submit(&example_brief()).await;
    s.wait_terminal(&id).await;
    let url = s.url(&format!("/campaigns/{id}"));
    let first = s.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = s
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.text().await.unwrap().is_empty());
    // A weak or listed match counts; another tag does not.
    let weak = s
        .http
        .get(&url)
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);
    let other = s
        .http
        .get(&url)
        .header("if-none-match", "\"0000000000000000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    // A run that moves on gets a new tag: the old one no longer matches.
    let slow = TestServer::start(&["copy=slow:600ms"]).await;
    let running = slow.submit(&example_brief()).await;
    let url = slow.url(&format!("/campaigns/{running}"));
    let early = slow.http.get(&url).send().await.unwrap();
    let early_tag = early.headers()["etag"].to_str().unwrap().to_string();
    slow.wait_terminal(&running).await;
    let later = slow
        .http
        .get(&url)
        .header("if-none-match", &early_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        later.status(),
        200,
        "the run changed, so the old tag must not match"
    );
    assert_ne!(later.headers()["etag"], early_tag.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_event_source_resumes_after_its_last_event_id() {
    let s = TestServer::start(&[]).await;
    let id = s.submit(&example_brief()).await;
    s.wait_terminal(&id).await;
    let r = s
        .http
        .get(s.url(&format!("/campaigns/{id}/events")))
        .header("accept", "text/event-stream")
        .header("last-event-id", "5")
        .send()
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .unwrap()
        .unwrap();
    let data = campaign_tests::sse_data(&body);
    assert_gapless(&data, 6);
    let ids: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.first(), Some(&"6"));
    let bad = s
        .http
        .get(s.url(&format!("/campaigns/{id}/events")))
        .header("accept", "text/event-stream")
        .header("last-event-id", "five")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn post_with_key(s: &TestServer, path: &str, key: &str, body: &Value) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(path))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_a_repeated_post_return_the_same_run() {
    let s = TestServer::start(&[]).await;
    let brief = example_brief();
    let (status, first) = post_with_key(&s, "/campaigns", "order-42", &brief).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = post_with_key(&s, "/campaigns", "order-42", &brief).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(first, again, "the original answer");
    let id = first["runId"].as_str().unwrap();
    s.wait_terminal(id).await;
    // Still the same run once it has finished; and only one run exists.
    let (_, later) = post_with_key(&s, "/campaigns", "order-42", &brief).await;
    assert_eq!(later["runId"], first["runId"]);
    let (_, list) = s.get("/campaigns?limit=100").await;
    assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");

    // The same key with another request is refused, and creates nothing.
    let mut other = brief.clone();
    other["tone"] = serde_json::json!("calm");
    let (status, body) = post_with_key(&s, "/campaigns", "order-42", &other).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("order-42"));
    // Without a key, duplicate briefs are separate runs.
    let a = s.submit(&brief).await;
    let b = s.submit(&brief).await;
    assert_ne!(a, b);
    // A malformed key is named; an invalid brief does not use up the key.
    let (status, _) = post_with_key(&s, "/campaigns", "bad key", &brief).await;
    assert_eq!(status, 400);
    let (status, _) = post_with_key(&s, "/campaigns", "order-43", &serde_json::json!({})).await;
    assert_eq!(status, 400);
    let (status, fresh) = post_with_key(&s, "/campaigns", "order-43", &brief).await;
    assert_eq!(status, 202, "{fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_an_idempotency_key_starts_one_iteration() {
    let s = TestServer::start(&["social=error"]).await;
    let id = s.submit(&example_brief()).await;
    s.wait_terminal(&id).await;
    let path = format!("/campaigns/{id}/retry");
    let body = serde_json::json!({});
    let (status, first) = post_with_key(&s, &path, "retry-1", &body).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = post_with_key(&s, &path, "retry-1", &body).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(first["runId"], again["runId"]);
    let (status, _) = post_with_key(
        &s,
        &path,
        "retry-1",
        &serde_json::json!({"agents": ["copy"]}),
    )
    .await;
    assert_eq!(status, 422);
    s.wait_terminal(first["runId"].as_str().unwrap()).await;
    let (_, list) = s.get("/campaigns?limit=100").await;
    assert_eq!(
        list["runs"].as_array().unwrap().len(),
        2,
        "parent and one retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_by_status_and_an_unknown_status_is_refused_with_the_allowed_ones() {
    let s = TestServer::start(&["social=error"]).await;
    let partial = s.submit(&example_brief()).await;
    s.wait_terminal(&partial).await;
    let (status, page) = s.get("/campaigns?status=completed").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["runId"] == partial.as_str())
    );
    let (_, page) = s.get("/campaigns?status=cancelled").await;
    assert_eq!(page["runs"], serde_json::json!([]));
    let (status, problem) = s.get("/campaigns?status=done").await;
    assert_eq!(status, 400);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("done") && detail.contains("audit_pending"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_served_with_a_content_security_policy() {
    let s = TestServer::start(&[]).await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/dashboard/app.js", "text/javascript"),
        ("/dashboard/app.css", "text/css"),
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let page = s
        .http
        .get(s.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<meta name="campaign-ws" content="/ws">"#),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_field_is_refused_with_guidance_or_truncated_on_request() {
    let s = TestServer::start(&[]).await;
    let mut brief = example_brief();
    brief["objective"] = serde_json::json!("Sell more lamps to readers. ".repeat(40));
    let (status, problem) = s.post("/campaigns", &brief).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem.to_string().contains("oversize=truncate"),
        "{problem}"
    );
    let (status, accepted) = s.post("/campaigns?oversize=truncate", &brief).await;
    assert_eq!(status, 202, "{accepted}");
    campaign_tests::openapi::Spec::default().check_schema("Accepted", &accepted);
    let cut = &accepted["truncations"][0];
    assert_eq!(cut["field"], "objective");
    assert_eq!(cut["length"], 1119);
    assert!(cut["truncatedTo"].as_u64().unwrap() <= 500);
    let run = s.wait_terminal(accepted["runId"].as_str().unwrap()).await;
    // Cut between two words of what was sent.
    let kept = run["brief"]["objective"].as_str().unwrap();
    let sent = brief["objective"].as_str().unwrap();
    assert!(
        sent.starts_with(kept) && sent[kept.len()..].starts_with(' '),
        "{kept}"
    );
    let (status, problem) = s.post("/campaigns?oversize=shorten", &brief).await;
    assert_eq!(status, 400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("reject, truncate")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_in_flight_limit_gets_429_with_retry_after_and_leaves_nothing_behind() {
    use campaign_shared::adapters::local::admission::Limits;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        campaign_tests::local_config(dir.path(), &["copy=slow:1s"], campaign_tests::TIME_SCALE);
    cfg.limits = Limits {
        max_in_flight: Some(3),
        ..Limits::default()
    };
    let s = TestServer::start_config(dir, cfg).await;
    let brief = example_brief();
    let answers = futures::future::join_all(
        (0..30).map(|_| s.http.post(s.url("/campaigns")).json(&brief).send()),
    )
    .await;
    let mut accepted = Vec::new();
    for r in answers {
        let r = r.unwrap();
        match r.status().as_u16() {
            202 => accepted.push(
                r.json::<Value>().await.unwrap()["runId"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            429 => {
                assert_eq!(r.headers()["retry-after"], "2");
                assert_eq!(r.headers()["content-type"], "application/problem+json");
                let p: Value = r.json().await.unwrap();
                assert!(p["detail"].as_str().unwrap().contains("in flight"), "{p}");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(accepted.len(), 3, "exactly the limit is admitted");
    // Nothing half-created: the store holds exactly the admitted runs, and each completes.
    let (_, page) = s.get("/campaigns?limit=100").await;
    assert_eq!(page["runs"].as_array().unwrap().len(), 3, "{page}");
    for id in &accepted {
        assert_eq!(s.wait_terminal(id).await["status"], "completed");
    }
    // Room again once they are done.
    s.submit(&brief).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_and_other_clients_do_not() {
    use campaign_shared::adapters::local::admission::Limits;
    use std::num::NonZeroU32;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = campaign_tests::local_config(dir.path(), &[], campaign_tests::TIME_SCALE);
    cfg.limits = Limits {
        per_second: NonZeroU32::new(1),
        burst: NonZeroU32::new(2),
        ..Limits::default()
    };
    let s = TestServer::start_config(dir, cfg).await;
    let post = |token: &'static str| {
        s.http
            .post(s.url("/campaigns"))
            .bearer_auth(token)
            .json(&example_brief())
            .send()
    };
    assert_eq!(post("alice").await.unwrap().status(), 202);
    assert_eq!(post("alice").await.unwrap().status(), 202);
    let third = post("alice").await.unwrap();
    assert_eq!(third.status(), 429);
    let wait: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    let headers = third.headers().clone();
    let p: Value = third.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("per second"), "{p}");
    // As the OpenAPI document describes it: problem+json, Retry-After an integer.
    campaign_tests::openapi::Spec::default().check_with_headers(
        "POST",
        "/campaigns",
        429,
        &headers,
        &p,
    );
    assert_eq!(
        post("bob").await.unwrap().status(),
        202,
        "another client is not held up"
    );
}
