//! A `campaign serve` process killed with SIGKILL with 100 runs accepted (most in flight), then restarted on the same
//! database: every accepted run reaches a terminal state, nothing completed is lost, and
//! every run's seq stays gapless.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use campaign_tests::runtime_api::binary;
use campaign_tests::{assert_gapless, example_brief};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(db: &std::path::Path, port: u16, faults: &[&str]) -> Child {
    let mut cmd = Command::new(binary("campaign"));
    cmd.args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--db"])
        .arg(db)
        // Timeouts scaled to 12 s: well above the slow faults below.
        .env("CAMPAIGN_TIME_SCALE", "0.2")
        .env("CAMPAIGN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for f in faults {
        cmd.args(["--fault", f]);
    }
    cmd.spawn().unwrap()
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("server at {base} did not come up");
}

async fn get(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("campaign.db");
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // Slow agents keep runs in flight at the moment of the kill.
    let mut child = spawn(&db, port, &["social=slow:1500ms", "visual=slow:3s"]);
    wait_up(&http, &base).await;
    let mut ids = Vec::new();
    for _ in 0..100 {
        let r: Value = http
            .post(format!("{base}/campaigns"))
            .json(&example_brief())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(r["runId"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // What was committed before the kill.
    let mut before: HashMap<String, Value> = HashMap::new();
    for id in &ids {
        before.insert(
            id.clone(),
            get(&http, format!("{base}/campaigns/{id}")).await,
        );
    }
    let in_flight = before
        .values()
        .filter(|r| r["status"] != "completed")
        .count();
    assert!(
        in_flight >= 50,
        "the kill must hit runs in flight ({in_flight} were)"
    );
    eprintln!(
        "crash recovery: {} runs accepted, {in_flight} in flight at SIGKILL",
        ids.len()
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mut child = spawn(&db, port, &[]);
    wait_up(&http, &base).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in &ids {
        let run = loop {
            let run = get(&http, format!("{base}/campaigns/{id}")).await;
            if matches!(
                run["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            ) {
                break run;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {id} never finished after restart: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(run["envelope"]["outcome"], "success", "{run:#}");
        // Every artifact committed before the kill is still there, with the same id.
        for agent in ["copy", "social", "visual"] {
            if let Some(aid) = before[id]["agents"][agent]["artifactId"].as_str() {
                assert_eq!(
                    run["agents"][agent]["artifactId"].as_str(),
                    Some(aid),
                    "{agent} of {id} lost"
                );
            }
        }
        let events: Value = get(&http, format!("{base}/campaigns/{id}/events")).await;
        let events = events["events"].as_array().unwrap();
        assert_gapless(events, 1);
        assert_eq!(events.last().unwrap()["status"], "completed");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
