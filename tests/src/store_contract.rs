//! The store ports' contract (runs, request keys, WebSocket subscriptions, brand kits), as
//! one suite every store must pass: the SQLite store on a file, the DynamoDB store against
//! moto. Each function is one rule.

use std::sync::Arc;

use campaign_shared::domain::artifact::CopyContent;
use campaign_shared::domain::{
    Agent, AgentError, Artifact, ArtifactId, AuditReport, Brief, Content, ExecutionMode, RunId,
    Scope, Status, Verdict,
};
use campaign_shared::domain::{
    AgentSample, BrandInput, BrandKit, Change, ModeDecision, ModePolicy,
};
use campaign_shared::ports::{
    BrandError, BrandLibrary, CONNECTION_TTL, NewRun, RequestKeys, RunStore, StoreError,
    Subscriptions,
};
use serde_json::json;
use time::OffsetDateTime;

/// A store as the deployments use it: runs, request keys, WebSocket subscriptions and the
/// brand library.
pub trait FullStore: RunStore + RequestKeys + Subscriptions + BrandLibrary {}
impl<T: RunStore + RequestKeys + Subscriptions + BrandLibrary> FullStore for T {}

pub type Store = Arc<dyn FullStore>;
/// Whatever must live as long as a test's store (a temp dir, the emulator's lock).
pub type Guard = Box<dyn std::any::Any + Send>;

fn brief() -> Brief {
    Brief::from_value(&json!({
        "objective": "Launch", "audience": "Riders", "product": "Aurora", "tone": "bold"
    }))
    .expect("valid brief")
}

pub fn new_run() -> NewRun {
    NewRun::first(brief(), ExecutionMode::Parallel, OffsetDateTime::now_utc())
}

fn artifact(run_id: RunId, agent: Agent) -> Artifact {
    Artifact {
        artifact_id: ArtifactId::new(),
        run_id,
        agent,
        content: Content::Copy(CopyContent {
            headline: "Ride further".into(),
            body: "Aurora takes the hills for you.".into(),
            call_to_action: "Book a test ride".into(),
        }),
        tags: vec!["aurora".into()],
        created_at: OffsetDateTime::now_utc(),
        audit: None,
        model: None,
    }
}

/// The answer a change made after the run closed gets: a conflict naming the closed run.
fn refused_as_closed<T: std::fmt::Debug>(r: &Result<T, StoreError>) {
    assert!(
        matches!(
            r,
            Err(StoreError::Conflict {
                run_terminal: true,
                ..
            })
        ),
        "{r:?}"
    );
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub async fn a_new_run_is_queued_with_one_event(s: Store) {
    let n = new_run();
    let id = n.run_id;
    let e = s.create_run(n).await.unwrap();
    assert_eq!((e.seq, e.scope, e.status), (1, Scope::Run, Status::Queued));
    let run = s.get_run(id).await.unwrap();
    assert_eq!(run.status, Status::Queued);
    assert!(
        run.agents
            .values()
            .all(|a| a.status == Status::Queued && a.attempts == 0)
    );
    assert_eq!(s.events(id, 0).await.unwrap().len(), 1);
}

pub async fn creating_the_same_run_twice_is_refused(s: Store) {
    let n = new_run();
    s.create_run(n.clone()).await.unwrap();
    assert!(matches!(
        s.create_run(n).await,
        Err(StoreError::AlreadyExists(_))
    ));
}

pub async fn an_unknown_run_is_not_found(s: Store) {
    assert!(matches!(
        s.get_run(RunId::new()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.events(RunId::new(), 0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn transitions_get_gapless_seq_and_artifacts_are_stored_with_them(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    let ev = s
        .apply(
            id,
            vec![
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Queued, Status::Generating),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    let a = artifact(id, Agent::Copy);
    let aid = a.artifact_id;
    let ev = s
        .apply(
            id,
            vec![Change::new(Agent::Copy, Status::Generating, Status::Generated).with_artifact(a)],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(ev[0].seq, 4);
    let run = s.get_run(id).await.unwrap();
    assert_eq!(run.agents[&Agent::Copy].artifact_id, Some(aid));
    assert_eq!(run.agents[&Agent::Copy].attempts, 1);
    assert_eq!(run.artifacts.len(), 1);
    let all = s.events(id, 0).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        s.events(id, 2)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
}

pub async fn a_transition_from_the_wrong_status_is_a_conflict_and_applies_nothing(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    let r = s
        .apply(
            id,
            vec![
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Generating, Status::Generated),
            ],
            now(),
        )
        .await;
    match r {
        Err(StoreError::Conflict {
            expected,
            actual,
            run_terminal,
            ..
        }) => {
            assert_eq!(
                (expected, actual, run_terminal),
                (Status::Generating, Status::Queued, false)
            );
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    let run = s.get_run(id).await.unwrap();
    assert_eq!(
        run.status,
        Status::Queued,
        "the batch must not be half applied"
    );
    assert_eq!(s.events(id, 0).await.unwrap().len(), 1);
}

pub async fn an_illegal_transition_is_refused(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    let r = s
        .apply(
            id,
            vec![Change::new(
                Agent::Social,
                Status::Queued,
                Status::Completed,
            )],
            now(),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
}

pub async fn no_agent_change_is_accepted_after_the_run_is_terminal(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    s.apply(
        id,
        vec![
            Change::run(Status::Queued, Status::Generating),
            Change::new(Agent::Copy, Status::Queued, Status::Generating),
        ],
        now(),
    )
    .await
    .unwrap();
    s.apply(
        id,
        vec![Change::run(Status::Generating, Status::Cancelled)],
        now(),
    )
    .await
    .unwrap();
    let r = s
        .apply(
            id,
            vec![
                Change::new(Agent::Copy, Status::Generating, Status::Generated)
                    .with_artifact(artifact(id, Agent::Copy)),
            ],
            now(),
        )
        .await;
    refused_as_closed(&r);
    assert!(matches!(
        s.bump_attempts(id, Agent::Copy).await,
        Err(StoreError::Conflict { .. })
    ));
    let events = s.events(id, 0).await.unwrap();
    assert_eq!(events.last().unwrap().status, Status::Cancelled);
    assert!(s.get_run(id).await.unwrap().artifacts.is_empty());
}

pub async fn attempts_are_counted_only_while_generating(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    assert!(matches!(
        s.bump_attempts(id, Agent::Visual).await,
        Err(StoreError::Conflict { .. })
    ));
    s.apply(
        id,
        vec![Change::new(
            Agent::Visual,
            Status::Queued,
            Status::Generating,
        )],
        now(),
    )
    .await
    .unwrap();
    assert_eq!(s.bump_attempts(id, Agent::Visual).await.unwrap(), 2);
}

pub async fn audit_reports_and_errors_and_envelopes_are_kept(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    let a = artifact(id, Agent::Copy);
    s.apply(
        id,
        vec![
            Change::run(Status::Queued, Status::Generating),
            Change::new(Agent::Copy, Status::Queued, Status::Generating),
            Change::new(Agent::Copy, Status::Generating, Status::Generated).with_artifact(a),
            Change::new(Agent::Copy, Status::Generated, Status::Auditing),
            Change::new(Agent::Copy, Status::Auditing, Status::Completed)
                .with_audit(AuditReport::from_findings(vec![])),
            Change::new(Agent::Social, Status::Queued, Status::Failed).with_error(AgentError {
                code: "AgentFailed".into(),
                message: "boom".into(),
            }),
        ],
        now(),
    )
    .await
    .unwrap();
    let run = s.get_run(id).await.unwrap();
    assert_eq!(run.status, Status::Generating);
    assert!(run.artifacts[0].audit.is_some());
    assert_eq!(run.agents[&Agent::Copy].verdict, Some(Verdict::Pass));
    assert_eq!(run.agents[&Agent::Copy].attempts, 1);
    assert_eq!(
        run.agents[&Agent::Social].error.as_ref().unwrap().message,
        "boom"
    );
    let env = campaign_shared::domain::envelope::compute(id, false, &run.agent_summaries());
    s.apply(
        id,
        vec![Change::run(Status::Generating, Status::Failed).with_envelope(env.clone())],
        now(),
    )
    .await
    .unwrap();
    let run = s.get_run(id).await.unwrap();
    assert_eq!((run.status, run.envelope), (Status::Failed, Some(env)));
    assert!(s.unfinished_runs().await.unwrap().iter().all(|r| *r != id));
}

pub async fn a_closed_run_is_its_state_with_the_timings_of_its_events(s: Store) {
    let n = new_run();
    let (id, t0) = (n.run_id, n.created_at);
    s.create_run(n).await.unwrap();
    let at = |ms: i64| t0 + time::Duration::milliseconds(ms);
    let steps = [
        (
            vec![
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Queued, Status::Generating),
            ],
            1,
        ),
        (
            vec![
                Change::new(Agent::Copy, Status::Generating, Status::Generated)
                    .with_artifact(artifact(id, Agent::Copy)),
            ],
            40,
        ),
        (
            vec![Change::new(
                Agent::Copy,
                Status::Generated,
                Status::Auditing,
            )],
            41,
        ),
        (
            vec![
                Change::new(Agent::Copy, Status::Auditing, Status::Completed)
                    .with_audit(AuditReport::from_findings(vec![])),
            ],
            75,
        ),
        (vec![Change::run(Status::Generating, Status::Failed)], 80),
    ];
    for (changes, ms) in steps {
        s.apply(id, changes, at(ms)).await.unwrap();
    }
    let closed = s.closed_run(id).await.unwrap();
    let expected = campaign_shared::domain::run::timings_from_events(
        closed.created_at,
        &s.events(id, 0).await.unwrap(),
    );
    assert_eq!(closed.timings, expected);
    assert_eq!(
        closed.timings.time_to_first_artifact_ms,
        Some(40),
        "{closed:?}"
    );
    // Otherwise the state, as get_state reads it.
    let mut state = s.get_state(id).await.unwrap();
    state.timings = closed.timings.clone();
    assert_eq!(closed, state);
}

pub async fn a_retry_run_reuses_artifacts_by_reference(s: Store) {
    let parent = new_run();
    let pid = parent.run_id;
    s.create_run(parent).await.unwrap();
    let a = artifact(pid, Agent::Copy);
    let aid = a.artifact_id;
    s.apply(
        pid,
        vec![
            Change::new(Agent::Copy, Status::Queued, Status::Generating),
            Change::new(Agent::Copy, Status::Generating, Status::Generated).with_artifact(a),
        ],
        now(),
    )
    .await
    .unwrap();
    let mut child = new_run();
    child.parent_run_id = Some(pid);
    child.iteration = 2;
    child.reuse = vec![(Agent::Copy, aid)];
    let cid = child.run_id;
    s.create_run(child).await.unwrap();
    let run = s.get_run(cid).await.unwrap();
    assert_eq!(run.parent_run_id, Some(pid));
    assert_eq!(run.iteration, 2);
    assert_eq!(run.agents[&Agent::Copy].status, Status::Completed);
    assert!(run.agents[&Agent::Copy].reused);
    assert_eq!(run.artifacts[0].artifact_id, aid);
    assert_eq!(run.artifacts[0].run_id, pid);
    assert_eq!(s.get_artifact(aid).await.unwrap().unwrap().artifact_id, aid);
}

pub async fn runs_are_listed_newest_first_with_a_cursor(s: Store) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let n = new_run();
        ids.push(n.run_id);
        s.create_run(n).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    ids.reverse();
    let p1 = s.list_runs(3, None, None).await.unwrap();
    let got: Vec<RunId> = p1.runs.iter().map(|r| r.run_id).collect();
    assert_eq!(&got[..], &ids[..3]);
    let p2 = s
        .list_runs(3, p1.next_cursor.as_deref(), None)
        .await
        .unwrap();
    assert!(
        p2.runs
            .iter()
            .map(|r| r.run_id)
            .eq(ids[3..5].iter().copied())
    );
    assert!(matches!(
        s.list_runs(3, Some("not-a-cursor"), None).await,
        Err(StoreError::BadCursor(_))
    ));
}

pub async fn runs_are_filtered_by_status_across_pages(s: Store) {
    // Seven runs; every other one moves on to generating (newest first: 0, 2, 4, 6 do).
    let mut ids = Vec::new();
    for _ in 0..7 {
        let n = new_run();
        ids.push(n.run_id);
        s.create_run(n).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    ids.reverse();
    for id in ids.iter().step_by(2) {
        s.apply(
            *id,
            vec![Change::run(Status::Queued, Status::Generating)],
            now(),
        )
        .await
        .unwrap();
    }
    let generating: Vec<RunId> = ids.iter().step_by(2).copied().collect();
    let p1 = s
        .list_runs(3, None, Some(Status::Generating))
        .await
        .unwrap();
    assert!(p1.runs.iter().all(|r| r.status == Status::Generating));
    assert_eq!(
        p1.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        generating[..3]
    );
    let p2 = s
        .list_runs(3, p1.next_cursor.as_deref(), Some(Status::Generating))
        .await
        .unwrap();
    assert_eq!(
        p2.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        generating[3..]
    );
    assert_eq!(p2.next_cursor, None);
    let queued = s.list_runs(10, None, Some(Status::Queued)).await.unwrap();
    assert_eq!(
        queued.runs.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        ids.iter().skip(1).step_by(2).copied().collect::<Vec<_>>()
    );
    assert!(
        s.list_runs(10, None, Some(Status::Cancelled))
            .await
            .unwrap()
            .runs
            .is_empty()
    );
}

pub async fn a_request_key_is_claimed_once_until_it_expires(s: Store) {
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::hours(24);
    let (a, b, c) = (RunId::new(), RunId::new(), RunId::new());
    let first = s.claim_key("k-1", "fp-a", a, now, later).await.unwrap();
    assert!(first.fresh);
    assert_eq!((first.run_id, first.fingerprint.as_str()), (a, "fp-a"));
    // A second claim, even with another request, gets the standing claim.
    let again = s.claim_key("k-1", "fp-b", b, now, later).await.unwrap();
    assert!(!again.fresh);
    assert_eq!((again.run_id, again.fingerprint.as_str()), (a, "fp-a"));
    // Other keys are independent.
    assert!(
        s.claim_key("k-2", "fp-a", b, now, later)
            .await
            .unwrap()
            .fresh
    );
    // Once expired, the key can be claimed anew.
    let after = later + time::Duration::seconds(1);
    let renewed = s
        .claim_key("k-1", "fp-c", c, after, after + time::Duration::hours(1))
        .await
        .unwrap();
    assert!(renewed.fresh);
    assert_eq!(renewed.run_id, c);
    // Concurrent claims of one key: exactly one wins.
    let claims = (0..8).map(|_| {
        let s = s.clone();
        async move {
            s.claim_key("k-race", "fp", RunId::new(), now, later)
                .await
                .unwrap()
        }
    });
    let results = futures::future::join_all(claims).await;
    assert_eq!(results.iter().filter(|r| r.fresh).count(), 1);
    let winner = results.iter().find(|r| r.fresh).unwrap().run_id;
    assert!(results.iter().all(|r| r.run_id == winner));
}

pub async fn a_runs_subscribers_are_its_live_subscriptions(s: Store) {
    let now = OffsetDateTime::now_utc();
    let (run, other) = (RunId::new(), RunId::new());
    assert!(s.subscribers(run, now).await.unwrap().is_empty());
    s.connect("c-1", now).await.unwrap();
    s.connect("c-2", now).await.unwrap();
    // Read after write: a subscription made a moment ago is listed.
    s.subscribe("c-1", run, now).await.unwrap();
    assert_eq!(s.subscribers(run, now).await.unwrap(), ["c-1"]);
    s.subscribe("c-2", run, now).await.unwrap();
    s.subscribe("c-2", other, now).await.unwrap();
    // Subscribing again renews the one subscription.
    s.subscribe("c-1", run, now).await.unwrap();
    let mut both = s.subscribers(run, now).await.unwrap();
    both.sort();
    assert_eq!(both, ["c-1", "c-2"]);
    assert_eq!(s.subscribers(other, now).await.unwrap(), ["c-2"]);
    // Unsubscribing ends that subscription alone; ending one that is not there is fine.
    s.unsubscribe("c-2", run).await.unwrap();
    s.unsubscribe("c-2", run).await.unwrap();
    assert_eq!(s.subscribers(run, now).await.unwrap(), ["c-1"]);
    assert_eq!(s.subscribers(other, now).await.unwrap(), ["c-2"]);
    // Forgetting a connection does not fail (its subscriptions may stay until they expire).
    s.disconnect("c-2").await.unwrap();
    s.disconnect("c-unknown").await.unwrap();
    // A subscription lives CONNECTION_TTL from when it was made (or renewed).
    let just_before = now + CONNECTION_TTL - time::Duration::seconds(1);
    assert_eq!(s.subscribers(run, just_before).await.unwrap(), ["c-1"]);
    let after = now + CONNECTION_TTL + time::Duration::seconds(1);
    assert!(s.subscribers(run, after).await.unwrap().is_empty());
    s.subscribe("c-1", run, after).await.unwrap();
    assert_eq!(s.subscribers(run, after).await.unwrap(), ["c-1"]);
}

pub async fn concurrent_writers_never_break_seq(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    s.apply(
        id,
        vec![Change::run(Status::Queued, Status::Generating)],
        now(),
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for agent in Agent::ALL {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.apply(
                id,
                vec![Change::new(agent, Status::Queued, Status::Generating)],
                now(),
            )
            .await
            .unwrap();
            s.apply(
                id,
                vec![
                    Change::new(agent, Status::Generating, Status::Generated)
                        .with_artifact(artifact(id, agent)),
                ],
                now(),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let events = s.events(id, 0).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    // Two writers racing for the same transition: exactly one wins.
    let (a, b) = tokio::join!(
        s.apply(
            id,
            vec![Change::run(Status::Generating, Status::Generated)],
            now()
        ),
        s.apply(
            id,
            vec![Change::run(Status::Generating, Status::Generated)],
            now()
        )
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one of two racing writers must win"
    );
}

pub async fn a_change_unless_already_done_is_passed_over_without_a_conflict(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    // Every agent starts at once, each moving the run to generating unless already done:
    // all three starts are accepted, and the run moves once.
    let mut tasks = Vec::new();
    for agent in Agent::ALL {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.apply(
                id,
                vec![
                    Change::run(Status::Queued, Status::Generating).unless_already(),
                    Change::new(agent, Status::Queued, Status::Generating),
                ],
                now(),
            )
            .await
            .unwrap()
        }));
    }
    let mut written = 0;
    for t in tasks {
        written += t.await.unwrap().len();
    }
    assert_eq!(written, 4, "one run event and three agent events");
    let events = s.events(id, 0).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.scope == Scope::Run && e.status == Status::Generating)
            .count(),
        1
    );
    let run = s.get_run(id).await.unwrap();
    assert_eq!(run.status, Status::Generating);
    assert!(run.agents.values().all(|a| a.status == Status::Generating));
    // Alone and already done, the batch writes nothing.
    let none = s
        .apply(
            id,
            vec![Change::run(Status::Queued, Status::Generating).unless_already()],
            now(),
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(s.events(id, 0).await.unwrap().len(), 5);
    // Once the run is closed it is refused like any change.
    s.apply(
        id,
        vec![Change::run(Status::Generating, Status::Cancelled)],
        now(),
    )
    .await
    .unwrap();
    let r = s
        .apply(
            id,
            vec![Change::run(Status::Queued, Status::Generating).unless_already()],
            now(),
        )
        .await;
    refused_as_closed(&r);
}

/// Defines one `#[tokio::test]` per contract rule for a store built by `$make`.
pub async fn an_auto_runs_decision_is_kept_with_the_run(s: Store) {
    let mut n = new_run();
    let mut samples = std::collections::BTreeMap::new();
    samples.insert(
        Agent::Copy,
        (0..3)
            .map(|_| AgentSample {
                agent: Agent::Copy,
                at: now(),
                duration_ms: 900,
                throttled: false,
            })
            .collect::<Vec<_>>(),
    );
    let decision: ModeDecision = ModePolicy {
        p95_ms: 100,
        ..ModePolicy::default()
    }
    .decide(&samples);
    n.execution_mode = decision.mode;
    n.mode_decision = Some(decision.clone());
    n.brief.execution_mode = ExecutionMode::Auto;
    let id = n.run_id;
    let first = s.create_run(n).await.unwrap();
    let run = s.get_run(id).await.unwrap();
    assert_eq!(run.execution_mode, ExecutionMode::Sequential);
    assert_eq!(run.brief.execution_mode, ExecutionMode::Auto);
    assert_eq!(run.mode_decision.as_ref(), Some(&decision));
    assert_eq!(s.get_state(id).await.unwrap().mode_decision, Some(decision));
    let detail = first.detail.unwrap();
    assert_eq!(detail["executionMode"], "sequential");
    assert!(
        detail["modeDecision"]["reason"]
            .as_str()
            .unwrap()
            .contains("copy p95 900 ms"),
        "{detail}"
    );
}

pub async fn agent_samples_come_back_newest_first_per_agent(s: Store) {
    assert!(s.recent_samples(Agent::Visual, 5).await.unwrap().is_empty());
    let t0 = now();
    for i in 0..6u64 {
        for agent in [Agent::Copy, Agent::Social] {
            s.record_sample(AgentSample {
                agent,
                at: t0 + time::Duration::milliseconds(i as i64),
                duration_ms: if agent == Agent::Copy { i } else { 100 + i },
                throttled: i == 5,
            })
            .await
            .unwrap();
        }
    }
    let copy = s.recent_samples(Agent::Copy, 4).await.unwrap();
    assert_eq!(
        copy.iter().map(|x| x.duration_ms).collect::<Vec<_>>(),
        [5, 4, 3, 2]
    );
    assert!(copy[0].throttled && !copy[1].throttled);
    assert!(copy.iter().all(|x| x.agent == Agent::Copy));
    let social = s.recent_samples(Agent::Social, 100).await.unwrap();
    assert_eq!(social.len(), 6);
    assert_eq!(social[5].duration_ms, 100);
}

pub async fn a_batch_and_its_sample_are_written_together_each_on_its_own(s: Store) {
    let n = new_run();
    let id = n.run_id;
    s.create_run(n).await.unwrap();
    let sample = |ms| AgentSample {
        agent: Agent::Copy,
        at: now(),
        duration_ms: ms,
        throttled: false,
    };
    // Refused batch: the sample is kept all the same, nothing of the batch is.
    let (refused, sampled) = s
        .apply_with_sample(
            id,
            vec![Change::new(
                Agent::Copy,
                Status::Generating,
                Status::Generated,
            )],
            now(),
            sample(7),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict { .. })),
        "{refused:?}"
    );
    sampled.unwrap();
    assert_eq!(s.events(id, 0).await.unwrap().len(), 1);
    // Both applied: the events come back, the sample is the newest.
    let (events, sampled) = s
        .apply_with_sample(
            id,
            vec![
                Change::run(Status::Queued, Status::Generating),
                Change::new(Agent::Copy, Status::Queued, Status::Generating),
            ],
            now(),
            sample(9),
        )
        .await;
    sampled.unwrap();
    assert_eq!(
        events.unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(),
        [2, 3]
    );
    let kept = s.recent_samples(Agent::Copy, 5).await.unwrap();
    assert_eq!(
        kept.iter().map(|x| x.duration_ms).collect::<Vec<_>>(),
        [9, 7]
    );
}

fn kit_input(body: serde_json::Value) -> BrandInput {
    BrandInput::parse(body.to_string().as_bytes()).unwrap()
}

fn kit(id: &str, version: u32, palette: &[&str]) -> BrandKit {
    let input = kit_input(json!({
        "brandId": id,
        "name": "Acme",
        "brandGuidelines": { "palette": palette, "toneAdjectives": ["bold"] },
        "constraints": { "prohibitedTerms": ["cheap"], "maxLength": { "social": 200 } }
    }));
    BrandKit {
        brand_id: id.into(),
        name: input.name,
        version,
        brand_guidelines: input.brand_guidelines,
        constraints: input.constraints,
        created_at: now(),
        updated_at: now(),
    }
}

pub async fn brand_kits_are_created_once_replaced_by_version_and_deleted(s: Store) {
    assert!(s.get_brand("acme").await.unwrap().is_none());
    assert!(s.list_brands().await.unwrap().is_empty());
    let v1 = kit("acme", 1, &["#112233"]);
    s.create_brand(v1.clone()).await.unwrap();
    assert!(matches!(
        s.create_brand(kit("acme", 1, &["#000000"])).await,
        Err(BrandError::AlreadyExists(id)) if id == "acme"
    ));
    s.create_brand(kit("zeta", 1, &[])).await.unwrap();
    s.create_brand(kit("beta", 1, &[])).await.unwrap();
    let got = s.get_brand("acme").await.unwrap().unwrap();
    assert_eq!(got.brand_guidelines, v1.brand_guidelines);
    assert_eq!(got.constraints, v1.constraints);
    assert_eq!(got.version, 1);

    let v2 = kit("acme", 2, &["#445566"]);
    s.replace_brand(v2.clone()).await.unwrap();
    assert_eq!(s.get_brand("acme").await.unwrap().unwrap().version, 2);
    // A writer that read version 1 is refused, and told the current version.
    match s.replace_brand(kit("acme", 2, &["#778899"])).await {
        Err(BrandError::VersionMismatch {
            expected: 1,
            current: 2,
            ..
        }) => {}
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(
        s.get_brand("acme")
            .await
            .unwrap()
            .unwrap()
            .brand_guidelines
            .palette,
        ["#445566"]
    );
    assert!(matches!(
        s.replace_brand(kit("nobody", 2, &[])).await,
        Err(BrandError::NotFound(_))
    ));
    let ids: Vec<String> = s
        .list_brands()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.brand_id)
        .collect();
    assert_eq!(ids, ["acme", "beta", "zeta"]);
    s.delete_brand("beta").await.unwrap();
    assert!(matches!(
        s.delete_brand("beta").await,
        Err(BrandError::NotFound(_))
    ));
    assert!(s.get_brand("beta").await.unwrap().is_none());
    assert_eq!(s.list_brands().await.unwrap().len(), 2);
}

#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@each $make;
            a_new_run_is_queued_with_one_event,
            creating_the_same_run_twice_is_refused,
            an_unknown_run_is_not_found,
            transitions_get_gapless_seq_and_artifacts_are_stored_with_them,
            a_transition_from_the_wrong_status_is_a_conflict_and_applies_nothing,
            an_illegal_transition_is_refused,
            no_agent_change_is_accepted_after_the_run_is_terminal,
            attempts_are_counted_only_while_generating,
            audit_reports_and_errors_and_envelopes_are_kept,
            a_closed_run_is_its_state_with_the_timings_of_its_events,
            a_retry_run_reuses_artifacts_by_reference,
            runs_are_listed_newest_first_with_a_cursor,
            runs_are_filtered_by_status_across_pages,
            concurrent_writers_never_break_seq,
            a_change_unless_already_done_is_passed_over_without_a_conflict,
            a_request_key_is_claimed_once_until_it_expires,
            a_runs_subscribers_are_its_live_subscriptions,
            an_auto_runs_decision_is_kept_with_the_run,
            agent_samples_come_back_newest_first_per_agent,
            a_batch_and_its_sample_are_written_together_each_on_its_own,
            brand_kits_are_created_once_replaced_by_version_and_deleted
        );
    };
    (@each $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make.await;
                $crate::store_contract::$name(store).await;
            }
        )*
    };
}
