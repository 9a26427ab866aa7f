//! The reliability suite: the fault matrix and cancellation races on the local engine (real
//! SQLite files, the real statemachine.asl.json). Bounded in time for the test command;
//! `RELIABILITY_HEAVY=1` multiplies the counts. Duplicate deliveries are covered handler by
//! handler in `functions.rs`, crash recovery in `crash_recovery.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use campaign_shared::adapters::faults::Faults;
use campaign_shared::domain::event::check_gapless;
use campaign_shared::domain::{
    Agent, Brief, Event, ExecutionMode, Outcome, Run, RunId, Scope, Status,
};
use campaign_shared::runtime::local::{LocalApp, LocalConfig};
use campaign_shared::usecases::{self, AppError};
use campaign_tests::{TIME_SCALE, example_brief};
use futures::StreamExt;

fn heavy() -> usize {
    if std::env::var_os("RELIABILITY_HEAVY").is_some() {
        10
    } else {
        1
    }
}

async fn app(faults: &[String], dir: &tempfile::TempDir) -> Arc<LocalApp> {
    app_scaled(faults, dir, TIME_SCALE).await
}

/// With `scale`, Task timeouts are 60 s × scale: generous enough that a loaded machine
/// does not turn a slow-but-healthy agent into a timeout.
async fn app_scaled(faults: &[String], dir: &tempfile::TempDir, scale: f64) -> Arc<LocalApp> {
    let mut f = Faults::default();
    for s in faults {
        f.add(s).unwrap();
    }
    let db = dir.path().join(format!("r-{}.db", RunId::new()));
    Arc::new(
        LocalApp::start(LocalConfig {
            db: Some(db),
            faults: f,
            time_scale: scale,
            ..Default::default()
        })
        .await
        .unwrap(),
    )
}

fn brief(mode: ExecutionMode) -> Brief {
    let mut b = Brief::from_value(&example_brief()).unwrap();
    b.execution_mode = mode;
    b
}

async fn wait_terminal(app: &LocalApp, id: RunId) -> Run {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = app.deps.store.get_run(id).await.unwrap();
        if run.status.is_terminal() {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} stuck in {}",
            run.status
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Replays the event log into final statuses: every transition must be logged, so the
/// log alone must reproduce the run's state.
fn replay(events: &[Event]) -> (Status, BTreeMap<Agent, Status>) {
    let mut run = Status::Queued;
    let mut agents: BTreeMap<Agent, Status> = Agent::ALL
        .into_iter()
        .map(|a| (a, Status::Queued))
        .collect();
    for e in events {
        match e.scope.agent() {
            None => run = e.status,
            Some(a) => {
                agents.insert(a, e.status);
            }
        }
    }
    (run, agents)
}

/// The invariants every finished run must satisfy.
async fn check_log(app: &LocalApp, run: &Run) {
    let events = app.deps.store.events(run.run_id, 0).await.unwrap();
    check_gapless(&events).unwrap();
    let terminal: Vec<&Event> = events
        .iter()
        .filter(|e| e.scope == Scope::Run && e.status.is_terminal())
        .collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal event: {events:#?}");
    assert_eq!(
        events.last().unwrap().seq,
        terminal[0].seq,
        "nothing after the terminal event"
    );
    let (status, agents) = replay(&events);
    assert_eq!(status, run.status);
    for (a, st) in &run.agents {
        if !st.reused {
            assert_eq!(
                agents[a], st.status,
                "{a}: the log disagrees with the state"
            );
        }
    }
    // Every artifact the log says was generated is still there, with its id.
    for e in events
        .iter()
        .filter(|e| e.status == Status::Generated && e.scope != Scope::Run)
    {
        let id = e.detail.as_ref().unwrap()["artifactId"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            run.artifacts
                .iter()
                .any(|a| a.artifact_id.to_string() == id),
            "artifact {id} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_fault_in_both_modes_ends_in_one_terminal_state_with_the_right_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for mode in [ExecutionMode::Parallel, ExecutionMode::Sequential] {
        for agent in Agent::ALL {
            for fault in ["error", "timeout", "panic", "slow:30ms"] {
                cases.push((mode, agent, fault));
            }
        }
    }
    let tasks = cases.into_iter().map(|(mode, agent, fault)| {
        let dir = &dir;
        async move {
            let app = app_scaled(&[format!("{agent}={fault}")], dir, 0.05).await;
            let id = usecases::submit(&app.deps, brief(mode), None)
                .await
                .unwrap();
            let run = wait_terminal(&app, id).await;
            check_log(&app, &run).await;
            let env = run.envelope.clone().unwrap();
            let others: Vec<Agent> = Agent::ALL.into_iter().filter(|a| *a != agent).collect();
            for o in &others {
                let st = &run.agents[o];
                assert_eq!(
                    st.status,
                    Status::Completed,
                    "{mode:?} {agent}={fault}: {o} must be intact"
                );
                assert!(
                    run.artifacts
                        .iter()
                        .any(|a| Some(a.artifact_id) == st.artifact_id && a.audit.is_some())
                );
            }
            if fault.starts_with("slow") {
                assert_eq!(
                    (run.status, env.outcome),
                    (Status::Completed, Outcome::Success),
                    "{mode:?} {agent}={fault}"
                );
            } else {
                let code = if fault == "timeout" {
                    "States.Timeout"
                } else {
                    "AgentFailed"
                };
                assert_eq!(
                    (run.status, env.outcome),
                    (Status::Completed, Outcome::Partial),
                    "{mode:?} {agent}={fault}"
                );
                assert_eq!(run.agents[&agent].status, Status::Failed);
                assert_eq!(
                    run.agents[&agent].error.as_ref().unwrap().code,
                    code,
                    "{mode:?} {agent}={fault}"
                );
                assert_eq!(env.retry.unwrap().agents, vec![agent]);
            }
            app.shutdown().await;
        }
    });
    // Eight at a time: bounded load, so only the injected faults decide the outcomes.
    futures::stream::iter(tasks)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// A generator call cut off by its Task's timeout still counts for `auto`: the step is
/// dropped, and the call is recorded with the time it had taken — the clearest sign of a
/// slow agent (before, nothing was recorded and `auto` never saw timeouts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_call_cut_off_by_the_task_timeout_is_recorded_for_auto_mode() {
    let dir = tempfile::tempdir().unwrap();
    // Task timeouts of 55 s × 0.01 = 550 ms; the copy agent never answers.
    let app = app_scaled(&["copy=timeout".to_string()], &dir, 0.01).await;
    let id = usecases::submit(&app.deps, brief(ExecutionMode::Parallel), None)
        .await
        .unwrap();
    let run = wait_terminal(&app, id).await;
    assert_eq!(
        run.agents[&Agent::Copy].error.as_ref().unwrap().code,
        "States.Timeout"
    );
    // The sample is written by a task the dropped step leaves behind: give it a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let copy = loop {
        let copy = app
            .deps
            .store
            .recent_samples(Agent::Copy, 10)
            .await
            .unwrap();
        if !copy.is_empty() || tokio::time::Instant::now() > deadline {
            break copy;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(copy.len(), 1, "{copy:?}");
    assert!(
        (500..5_000).contains(&copy[0].duration_ms),
        "cut off at the 550 ms timeout: {copy:?}"
    );
    // The other agents' calls are recorded as they end.
    for agent in [Agent::Social, Agent::Visual] {
        assert_eq!(
            app.deps
                .store
                .recent_samples(agent, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_audit_in_both_modes_defers_and_then_completes() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [ExecutionMode::Parallel, ExecutionMode::Sequential] {
        let app = app(&["audit=unavailable".into()], &dir).await;
        let id = usecases::submit(&app.deps, brief(mode), None)
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while app.deps.store.get_run(id).await.unwrap().status != Status::AuditPending {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode:?}: never parked"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        app.set_audit_unavailable(false);
        let run = wait_terminal(&app, id).await;
        check_log(&app, &run).await;
        assert_eq!(run.envelope.unwrap().outcome, Outcome::Success, "{mode:?}");
        app.shutdown().await;
    }
}

/// A small deterministic generator for cancellation moments.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_at_random_moments_never_writes_after_the_terminal_event() {
    let dir = tempfile::tempdir().unwrap();
    let faults: Vec<String> = [
        "copy=slow:4ms",
        "social=slow:9ms",
        "visual=slow:14ms",
        "audit=slow:3ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let app = app(&faults, &dir).await;
    let n = 1000 * heavy();
    let mut rng = Lcg(0x5EED);
    let mut handles = Vec::new();
    for i in 0..n {
        let app = app.clone();
        let wait = Duration::from_micros(rng.next(3_000_000));
        let mode = if i % 2 == 0 {
            ExecutionMode::Parallel
        } else {
            ExecutionMode::Sequential
        };
        // Every tenth cancel comes once the run has ended, so the refused side of the race
        // is exercised however fast this machine works through the burst; the others come
        // at a random moment within 3 s of submission.
        let after_end = i % 10 == 0;
        handles.push(tokio::spawn(async move {
            let id = usecases::submit(&app.deps, brief(mode), None)
                .await
                .unwrap();
            if after_end {
                wait_terminal(&app, id).await;
            } else {
                tokio::time::sleep(wait).await;
            }
            let cancelled = match usecases::cancel(&app.deps, id).await {
                Ok(_) => true,
                Err(AppError::Conflict(_)) => false,
                Err(e) => panic!("cancel failed: {e}"),
            };
            (id, cancelled)
        }));
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    // Let every in-flight step try to write after the cancel.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut cancelled, mut finished) = (0, 0);
    for (id, was_cancelled) in &results {
        let run = wait_terminal(&app, *id).await;
        if *was_cancelled {
            cancelled += 1;
            assert_eq!(run.status, Status::Cancelled, "{:?}", run.envelope);
            assert_eq!(run.envelope.as_ref().unwrap().outcome, Outcome::Cancelled);
        } else {
            finished += 1;
            assert_ne!(
                run.status,
                Status::Cancelled,
                "a refused cancel must not cancel"
            );
        }
        check_log(&app, &run).await;
    }
    // Both sides of the race were exercised.
    assert!(
        cancelled > 0 && finished > 0,
        "cancelled {cancelled}, finished first {finished}"
    );
    eprintln!(
        "cancellation races: {n} runs, {cancelled} cancelled, {finished} had already finished"
    );
    app.shutdown().await;
}
