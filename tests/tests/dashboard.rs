//! The dashboard served by `campaign serve` at `/`, used in a real browser (Debian's
//! Chromium driven by playwright-core: `tests/browser/dashboard.mjs`): submit a brief
//! through the form and watch the agents complete live, read the bundle, retry a partial
//! run, cancel a slow one, see a 400 next to its field, manage brand kits and use one with
//! a priority and auto mode, and run nothing from a hostile brief or SVG. Screenshots land in `target/dashboard-screenshots/`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use campaign_tests::TestServer;
use campaign_tests::browser::scenario;

/// A server whose flow runs at real speed (the agents' delays are on purpose).
async fn server(faults: &[&str]) -> TestServer {
    TestServer::start_scaled(tempfile::tempdir().unwrap(), faults, 1.0).await
}

async fn run(name: &'static str, s: &TestServer) {
    let base = s.base.clone();
    tokio::task::spawn_blocking(move || scenario(name, &base, &[]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_submitted_through_the_form_is_watched_live_to_its_bundle() {
    let s = server(&["copy=slow:1s", "social=slow:1500ms", "visual=slow:2s"]).await;
    run("live", &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_run_is_retried_from_the_page_and_links_to_its_parent() {
    let s = server(&["social=error:1"]).await;
    run("retry", &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_run_is_cancelled_from_the_page() {
    let s = server(&["copy=slow:30s"]).await;
    run("cancel", &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_brief_shows_the_servers_reason_next_to_its_field() {
    let s = server(&[]).await;
    run("invalid", &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brand_kits_are_managed_from_the_page_and_a_brief_uses_one_with_priority_and_auto() {
    let s = server(&[]).await;
    run("brands", &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_from_a_brief_or_an_svg_runs_in_the_page() {
    let s = server(&[]).await;
    run("hostile", &s).await;
}
