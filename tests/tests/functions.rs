//! Each Lambda handler fed JSON fixtures of the real event shapes (HTTP API v2, WebSocket,
//! SQS, EventBridge status change and custom event), including duplicate deliveries,
//! against DynamoDB, SQS and Step Functions on a moto server.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use campaign_shared::adapters::aws::dynamodb::DynamoStore;
use campaign_shared::domain::Change;
use campaign_shared::domain::{Agent, RunId, Status};
use campaign_shared::ports::RunStore;
use campaign_shared::ports::{PushError, Pusher, Subscriptions};
use campaign_shared::usecases;
use campaign_tests::aws_env::{AwsEnv, TABLE, fixture};
use lambda_http::tower::ServiceExt;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn event<T>(payload: T) -> LambdaEvent<T> {
    LambdaEvent::new(payload, Context::default())
}

async fn call_api(env: &AwsEnv, fixture_name: &str, run_id: &str) -> (u16, Value) {
    let request = fixture(fixture_name, run_id);
    let (status, _, body) = answer(env.deps.clone(), env.dynamodb.clone(), &request).await;
    (status, body)
}

/// The api function's router answering one API Gateway (payload v2) request: status,
/// headers and the body as JSON (`Null` when it is not).
async fn answer(
    deps: campaign_shared::ports::Deps,
    dynamodb: aws_sdk_dynamodb::Client,
    request: &Value,
) -> (u16, axum::http::HeaderMap, Value) {
    let req = lambda_http::request::from_str(&request.to_string()).unwrap();
    let resp = campaign_api::app(deps, &Default::default(), dynamodb)
        .unwrap()
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn execution_status(env: &AwsEnv, run_id: &str) -> String {
    let arn = format!(
        "{}:{run_id}",
        env.state_machine_arn
            .replacen(":stateMachine:", ":execution:", 1)
    );
    env.sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap()
        .status
        .as_str()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_creates_a_run_and_starts_an_execution_named_by_its_id() {
    let env = AwsEnv::start().await;
    let (status, body) = call_api(&env, "http-api-v2-post-campaigns.json", "").await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["runId"].as_str().unwrap().to_string();
    let run = env
        .store
        .get_run(RunId::parse(&run_id).unwrap())
        .await
        .unwrap();
    assert_eq!(run.status, Status::Queued);
    assert_eq!(execution_status(&env, &run_id).await, "RUNNING");
    // Starting the same run again (same name, same input) is idempotent in Step
    // Functions: no second execution.
    let again = campaign_shared::ports::Workflow::start(
        env.deps.workflow.as_ref(),
        run.run_id,
        usecases::execution_input(&run),
    )
    .await;
    assert!(
        matches!(
            again,
            Ok(()) | Err(campaign_shared::ports::WorkflowError::AlreadyStarted(_))
        ),
        "{again:?}"
    );
    let executions = env
        .sfn
        .list_executions()
        .state_machine_arn(&env.state_machine_arn)
        .send()
        .await
        .unwrap()
        .executions;
    assert_eq!(executions.len(), 1);
    // The first lifecycle event went to the status queue.
    let queued = env.drain(&env.status_queue_url).await;
    assert_eq!(queued.len(), 1);
    let e: Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(
        (e["seq"].as_u64(), e["status"].as_str()),
        (Some(1), Some("queued"))
    );
    // GET through the same router returns it.
    let (status, got) = call_api(&env, "http-api-v2-get-campaign.json", &run_id).await;
    assert_eq!(status, 200);
    assert_eq!(got["runId"], run_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_every_violation_of_an_invalid_brief() {
    let env = AwsEnv::start().await;
    let (status, body) = call_api(&env, "http-api-v2-post-invalid-brief.json", "").await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["objective", "audience", "product", "tone", "budget"] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_through_the_api_stops_the_execution_and_closes_the_run() {
    let env = AwsEnv::start().await;
    let (_, body) = call_api(&env, "http-api-v2-post-campaigns.json", "").await;
    let run_id = body["runId"].as_str().unwrap().to_string();
    let (status, run) = call_api(&env, "http-api-v2-cancel-campaign.json", &run_id).await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "cancelled");
    assert_eq!(execution_status(&env, &run_id).await, "ABORTED");
    let (status, _) = call_api(&env, "http-api-v2-cancel-campaign.json", &run_id).await;
    assert_eq!(status, 409);
}

async fn submitted(env: &AwsEnv) -> RunId {
    let brief =
        campaign_shared::domain::Brief::from_value(&campaign_tests::example_brief()).unwrap();
    usecases::submit(&env.deps, brief, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_stop_cancels_the_run_once_however_often_it_is_delivered() {
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let payload: aws_lambda_events::eventbridge::EventBridgeEvent<
        campaign_execution_events::StatusChange,
    > = serde_json::from_value(fixture(
        "eventbridge-execution-aborted.json",
        &run_id.to_string(),
    ))
    .unwrap();
    for _ in 0..3 {
        campaign_execution_events::handler(event(payload.clone()), &env.deps)
            .await
            .unwrap();
    }
    let run = env.store.get_run(run_id).await.unwrap();
    assert_eq!(run.status, Status::Cancelled);
    let events = env.store.events(run_id, 0).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.status == Status::Cancelled && e.scope.agent().is_none())
            .count(),
        1
    );
    assert_eq!(
        run.envelope.unwrap().outcome,
        campaign_shared::domain::Outcome::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_execution_fails_the_run_with_its_reason() {
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let payload: aws_lambda_events::eventbridge::EventBridgeEvent<
        campaign_execution_events::StatusChange,
    > = serde_json::from_value(fixture(
        "eventbridge-execution-failed.json",
        &run_id.to_string(),
    ))
    .unwrap();
    campaign_execution_events::handler(event(payload.clone()), &env.deps)
        .await
        .unwrap();
    campaign_execution_events::handler(event(payload), &env.deps)
        .await
        .unwrap();
    let run = env.store.get_run(run_id).await.unwrap();
    assert_eq!(run.status, Status::Failed);
    let env_ = run.envelope.unwrap();
    assert_eq!(env_.reasons[0].code, "States.Runtime");
    assert_eq!(
        run.agents[&Agent::Copy].error.as_ref().unwrap().code,
        "States.Runtime"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_requested_event_delivered_twice_starts_one_run() {
    let env = AwsEnv::start().await;
    let payload: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
        serde_json::from_value(fixture("eventbridge-campaign-requested.json", "")).unwrap();
    let first = campaign_trigger::handler(event(payload.clone()), &env.deps)
        .await
        .unwrap();
    let second = campaign_trigger::handler(event(payload.clone()), &env.deps)
        .await
        .unwrap();
    assert_eq!(first["runId"], second["runId"]);
    let page = env.store.list_runs(10, None, None).await.unwrap();
    assert_eq!(page.runs.len(), 1);
    assert_eq!(
        execution_status(&env, first["runId"].as_str().unwrap()).await,
        "RUNNING"
    );
    // A brief that fails validation is refused by name.
    let mut bad = payload;
    bad.id = Some("another-event".into());
    bad.detail = json!({"objective": "x"});
    let e = campaign_trigger::handler(event(bad), &env.deps)
        .await
        .unwrap_err();
    assert_eq!(e.name, "InvalidInput");
    assert!(e.message.contains("audience"), "{}", e.message);
}

/// Records pushes; connections listed in `gone` answer 410, those in `failing` fail.
#[derive(Default)]
struct RecordingPusher {
    pushed: Mutex<Vec<(String, String)>>,
    gone: Vec<String>,
    failing: Vec<String>,
    attempts: Mutex<Vec<String>>,
}

#[async_trait]
impl Pusher for RecordingPusher {
    async fn push(&self, connection_id: &str, text: &str) -> Result<(), PushError> {
        self.attempts.lock().unwrap().push(text.into());
        if self.gone.iter().any(|g| g == connection_id) {
            return Err(PushError::Gone(connection_id.into()));
        }
        if self.failing.iter().any(|g| g == connection_id) {
            return Err(PushError::Failed(format!("{connection_id}: 500").into()));
        }
        self.pushed
            .lock()
            .unwrap()
            .push((connection_id.into(), text.into()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_pushes_to_subscribers_and_forgets_gone_connections() {
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let connections = DynamoStore::new(env.dynamodb.clone(), TABLE);
    let now = time::OffsetDateTime::now_utc();
    connections.subscribe("live", run_id, now).await.unwrap();
    connections.subscribe("gone", run_id, now).await.unwrap();
    let body = env.drain(&env.status_queue_url).await.remove(0);
    let mut sqs: Value = fixture("sqs-status-event.json", "");
    sqs["Records"][0]["body"] = json!(body);
    let payload: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(sqs).unwrap();
    let pusher = RecordingPusher {
        gone: vec!["gone".into()],
        ..Default::default()
    };
    let r = campaign_notifier::handler(event(payload.clone()), &connections, &pusher)
        .await
        .unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        pusher.pushed.lock().unwrap().clone(),
        vec![("live".to_string(), body.clone())]
    );
    assert_eq!(
        connections.subscribers(run_id, now).await.unwrap(),
        vec!["live".to_string()]
    );
    // A duplicate delivery pushes again (at-least-once; clients drop seen seqs) and
    // never fails on the connection that is gone.
    let r = campaign_notifier::handler(event(payload), &connections, &pusher)
        .await
        .unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(pusher.pushed.lock().unwrap().len(), 2);
}

/// The status queue groups each run's events (FIFO, group id = run id); once an event of a
/// group fails, the group's later events in the batch are handed back undelivered — so SQS
/// redelivers them after it, in order — while other runs' events still go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_event_holds_back_the_later_events_of_its_run_only() {
    let env = AwsEnv::start_with(campaign_tests::aws_env::Options {
        fifo_status: true,
        ..Default::default()
    })
    .await;
    let (a, b) = (submitted(&env).await, submitted(&env).await);
    let sent = env.drain_grouped(&env.status_queue_url).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (group, body) in &sent {
        let e: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            group.as_deref(),
            e["runId"].as_str(),
            "group id is the run id"
        );
    }
    let body_of = |run: RunId| {
        sent.iter()
            .find(|(g, _)| g.as_deref() == Some(run.to_string().as_str()))
            .unwrap()
            .1
            .clone()
    };
    let connections = DynamoStore::new(env.dynamodb.clone(), TABLE);
    let now = time::OffsetDateTime::now_utc();
    connections.subscribe("flaky", a, now).await.unwrap();
    connections.subscribe("steady", b, now).await.unwrap();
    let template: Value = fixture("sqs-status-event.json", "");
    let record = |id: &str, run: RunId| {
        let mut r = template["Records"][0].clone();
        r["messageId"] = json!(id);
        r["body"] = json!(body_of(run));
        r["attributes"]["MessageGroupId"] = json!(run.to_string());
        r
    };
    let batch = json!({"Records": [record("a1", a), record("a2", a), record("b1", b)]});
    let payload: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(batch).unwrap();
    let pusher = RecordingPusher {
        failing: vec!["flaky".into()],
        ..Default::default()
    };
    let r = campaign_notifier::handler(event(payload), &connections, &pusher)
        .await
        .unwrap();
    let failed: Vec<&str> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["a1", "a2"]);
    // a2 was never tried (held behind a1); b1 went out.
    assert_eq!(pusher.attempts.lock().unwrap().len(), 2);
    assert_eq!(
        pusher.pushed.lock().unwrap().clone(),
        vec![("steady".to_string(), body_of(b))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_status_message_fails_alone_in_the_batch() {
    let env = AwsEnv::start().await;
    let connections = DynamoStore::new(env.dynamodb.clone(), TABLE);
    let mut sqs: Value = fixture("sqs-status-event.json", "");
    let good = sqs["Records"][0].clone();
    sqs["Records"][0]["body"] = json!("not json");
    let mut second = good;
    second["messageId"] = json!("second");
    let run_id = submitted(&env).await;
    second["body"] = json!(env.drain(&env.status_queue_url).await.remove(0));
    sqs["Records"].as_array_mut().unwrap().push(second);
    let payload: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(sqs).unwrap();
    let pusher = RecordingPusher::default();
    connections
        .subscribe("c1", run_id, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let r = campaign_notifier::handler(event(payload), &connections, &pusher)
        .await
        .unwrap();
    let failed: Vec<&str> = r
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["059f36b4-87a3-44ab-83d2-661975830a7d"]);
    assert_eq!(pusher.pushed.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_routes_connect_subscribe_with_replay_and_disconnect() {
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let connections = DynamoStore::new(env.dynamodb.clone(), TABLE);
    let pusher = RecordingPusher::default();
    for name in ["websocket-connect.json", "websocket-subscribe.json"] {
        let payload: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(fixture(name, &run_id.to_string())).unwrap();
        let r = campaign_ws::handler(event(payload), &connections, &pusher, &env.store)
            .await
            .unwrap();
        assert_eq!(r.status_code, 200, "{name}: {:?}", r.body);
    }
    // Subscribing replayed the run's events after `after` (0): the queued event.
    let pushed = pusher.pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1);
    let e: Value = serde_json::from_str(&pushed[0].1).unwrap();
    assert_eq!(e["seq"], 1);
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        connections.subscribers(run_id, now).await.unwrap(),
        vec!["Kx1abcdEFGhIJ=".to_string()]
    );
    let payload: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture("websocket-disconnect.json", "")).unwrap();
    let r = campaign_ws::handler(event(payload), &connections, &pusher, &env.store)
        .await
        .unwrap();
    assert_eq!(r.status_code, 200);
    // Subscribing to an unknown run says so.
    let payload: aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest =
        serde_json::from_value(fixture(
            "websocket-subscribe.json",
            &RunId::new().to_string(),
        ))
        .unwrap();
    let r = campaign_ws::handler(event(payload), &connections, &pusher, &env.store)
        .await
        .unwrap();
    assert_eq!(r.status_code, 404);
}

/// Drives a run to audit-pending with stored artifacts, as the flow does when audit fails.
async fn audit_pending_run(env: &AwsEnv) -> RunId {
    let run_id = submitted(env).await;
    let run = env.store.get_run(run_id).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut changes = vec![Change::run(Status::Queued, Status::Generating)];
    for agent in Agent::ALL {
        let content = campaign_shared::agents::generate(agent, &run.brief, run_id).unwrap();
        let artifact = campaign_shared::domain::Artifact {
            artifact_id: campaign_shared::domain::ArtifactId::new(),
            run_id,
            agent,
            content,
            tags: vec![],
            created_at: now,
            audit: None,
            model: None,
        };
        changes.push(Change::new(agent, Status::Queued, Status::Generating));
        changes.push(
            Change::new(agent, Status::Generating, Status::Generated).with_artifact(artifact),
        );
        changes.push(Change::new(agent, Status::Generated, Status::AuditPending));
    }
    changes.push(Change::run(Status::Generating, Status::Generated));
    changes.push(Change::run(Status::Generated, Status::AuditPending));
    env.store.apply(run_id, changes, now).await.unwrap();
    run_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deferred_audit_completes_a_pending_run_once_however_often_delivered() {
    let env = AwsEnv::start().await;
    let run_id = audit_pending_run(&env).await;
    let mut sqs: Value = fixture("sqs-deferred-audit.json", "");
    sqs["Records"][0]["body"] = json!(json!({"runId": run_id}).to_string());
    let payload: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(sqs).unwrap();
    for _ in 0..3 {
        let r = campaign_deferred_audit::handler(event(payload.clone()), &env.deps)
            .await
            .unwrap();
        assert!(r.batch_item_failures.is_empty());
    }
    let run = env.store.get_run(run_id).await.unwrap();
    assert_eq!(run.status, Status::Completed);
    assert!(
        run.artifacts.iter().all(|a| a.audit.is_some()),
        "{:?} / {:?}",
        run.artifacts
            .iter()
            .map(|a| (a.agent, a.audit.is_some()))
            .collect::<Vec<_>>(),
        env.store
            .events(run_id, 0)
            .await
            .unwrap()
            .iter()
            .map(|e| (e.seq, e.scope, e.status))
            .collect::<Vec<_>>()
    );
    let events = env.store.events(run_id, 0).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.status == Status::Completed && e.scope.agent().is_none())
            .count(),
        1
    );
    campaign_shared::domain::event::check_gapless(&events).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deferred_audit_leaves_a_cancelled_run_alone() {
    let env = AwsEnv::start().await;
    let run_id = audit_pending_run(&env).await;
    usecases::close_cancelled(&env.deps, run_id, "test")
        .await
        .unwrap();
    let before = env.store.events(run_id, 0).await.unwrap().len();
    let mut sqs: Value = fixture("sqs-deferred-audit.json", "");
    sqs["Records"][0]["body"] = json!(json!({"runId": run_id}).to_string());
    let payload: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(sqs).unwrap();
    let r = campaign_deferred_audit::handler(event(payload), &env.deps)
        .await
        .unwrap();
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        env.store.get_run(run_id).await.unwrap().status,
        Status::Cancelled
    );
    assert_eq!(env.store.events(run_id, 0).await.unwrap().len(), before);
}

/// An agent function whose generator does not answer gives the call up shortly before
/// its own deadline: the agent fails with the reason and the call is recorded for `auto`
/// (killed by Lambda at its timeout, it would have recorded nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_function_gives_up_a_hung_generator_before_its_deadline_and_records_it() {
    use campaign_shared::adapters::builtin::BuiltinGenerator;
    use campaign_shared::adapters::faults::{AgentFault, FaultyGenerator};
    use campaign_shared::usecases::TaskFunction;
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let deps = campaign_shared::ports::Deps {
        generator: std::sync::Arc::new(FaultyGenerator::new(
            BuiltinGenerator,
            [(Agent::Copy, AgentFault::Timeout)].into_iter().collect(),
        )),
        ..env.deps.clone()
    };
    // The invocation's deadline 3.6 s away: the step gives up 2 s (the margin) before it,
    // ~1.6 s from now — the store round trips before the call (moto, on a machine busy
    // with the rest of the suite) may take up to 1.2 s of that and still leave the call
    // the 400 ms checked below.
    let mut context = Context::default();
    let deadline = std::time::SystemTime::now() + Duration::from_millis(3_600);
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let started = std::time::Instant::now();
    let call = campaign_tasks::handler(
        TaskFunction::Agent(Agent::Copy),
        LambdaEvent::new(json!({"runId": run_id.to_string()}), context),
        &deps,
    );
    let e = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the step gave the hung call up")
        .unwrap_err();
    let took = started.elapsed();
    let d: lambda_runtime::Diagnostic = e.into();
    assert_eq!(d.error_type, "AgentFailed");
    assert!(
        d.error_message.contains("time ran out"),
        "{}",
        d.error_message
    );
    assert!(
        took < Duration::from_millis(3_400),
        "gave up after {took:?}"
    );
    let samples = env.store.recent_samples(Agent::Copy, 10).await.unwrap();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert!(samples[0].duration_ms >= 400, "{samples:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_functions_run_a_whole_flow_against_aws_adapters() {
    // The state machine's Task payloads, in the order the parallel path sends them.
    use campaign_shared::usecases::TaskFunction;
    let env = AwsEnv::start().await;
    let run_id = submitted(&env).await;
    let id = json!(run_id.to_string());
    for agent in Agent::ALL {
        let out = campaign_tasks::handler(
            TaskFunction::Agent(agent),
            event(json!({"runId": id})),
            &env.deps,
        )
        .await
        .unwrap();
        assert_eq!(out["status"], "generated");
        // A retried invocation (at-least-once) returns the same artifact.
        let again = campaign_tasks::handler(
            TaskFunction::Agent(agent),
            event(json!({"runId": id})),
            &env.deps,
        )
        .await
        .unwrap();
        assert_eq!(again["artifactId"], out["artifactId"]);
    }
    campaign_tasks::handler(
        TaskFunction::Audit,
        event(json!({"runId": id, "action": "audit"})),
        &env.deps,
    )
    .await
    .unwrap();
    let out = campaign_tasks::handler(
        TaskFunction::Finalize,
        event(json!({"runId": id})),
        &env.deps,
    )
    .await
    .unwrap();
    assert_eq!(out["outcome"], "success");
    let run = env.store.get_run(run_id).await.unwrap();
    assert_eq!(run.status, Status::Completed);
    campaign_shared::domain::event::check_gapless(&env.store.events(run_id, 0).await.unwrap())
        .unwrap();
    // A malformed payload is named InvalidInput, which the ASL's Catch handles.
    let e = campaign_tasks::handler(TaskFunction::Audit, event(json!({"run": 1})), &env.deps)
        .await
        .unwrap_err();
    assert_eq!(e.name, "InvalidInput");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_refuses_sse_with_a_documented_406() {
    let env = AwsEnv::start().await;
    let (_, created) = call_api(&env, "http-api-v2-post-campaigns.json", "").await;
    let id = created["runId"].as_str().unwrap();
    let mut req = fixture("http-api-v2-get-campaign.json", id);
    req["rawPath"] = json!(format!("/campaigns/{id}/events"));
    req["requestContext"]["http"]["path"] = req["rawPath"].clone();
    req["headers"]["accept"] = json!("text/event-stream");
    let (status, headers, body) = answer(env.deps.clone(), env.dynamodb.clone(), &req).await;
    assert_eq!(status, 406);
    campaign_tests::openapi::Spec::shared().check_with_headers(
        "GET",
        "/campaigns/{runId}/events",
        406,
        &headers,
        &body,
    );
}

/// The store unreachable: the api function answers 503 problem+json with Retry-After, as the
/// OpenAPI document describes it (a real SDK call failing, not a stand-in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_function_answers_a_documented_503_when_the_table_is_unreachable() {
    let env = AwsEnv::start().await;
    let (_, created) = call_api(&env, "http-api-v2-post-campaigns.json", "").await;
    let id = created["runId"].as_str().unwrap();
    // A port nothing listens on: every DynamoDB call fails to connect.
    let gone = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.sdk)
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let store = DynamoStore::new(gone.clone(), TABLE);
    let deps = campaign_shared::ports::Deps {
        store: std::sync::Arc::new(store.clone()),
        keys: std::sync::Arc::new(store.clone()),
        brands: std::sync::Arc::new(store),
        ..env.deps.clone()
    };
    let req = fixture("http-api-v2-get-campaign.json", id);
    let (status, headers, body) = answer(deps, gone, &req).await;
    assert_eq!(status, 503);
    campaign_tests::openapi::Spec::shared().check_with_headers(
        "GET",
        "/campaigns/{runId}",
        503,
        &headers,
        &body,
    );
    // The detail names the root cause (the connection's own failure), not "service error".
    let detail = body["detail"].to_string();
    assert!(
        detail.to_lowercase().contains("connection refused"),
        "{detail}"
    );
}

/// A workflow whose executions all ended (aborted) at a moment the test sets.
struct EndedAt(Mutex<time::OffsetDateTime>);

#[async_trait]
impl campaign_shared::ports::Workflow for EndedAt {
    async fn start(&self, _: RunId, _: Value) -> Result<(), campaign_shared::ports::WorkflowError> {
        Ok(())
    }
    async fn stop(&self, _: RunId, _: &str) -> Result<(), campaign_shared::ports::WorkflowError> {
        Ok(())
    }
    async fn describe(
        &self,
        _: RunId,
    ) -> Result<campaign_shared::ports::ExecutionState, campaign_shared::ports::WorkflowError> {
        Ok(campaign_shared::ports::ExecutionState::Ended {
            end: campaign_shared::ports::ExecutionEnd::Aborted,
            at: Some(*self.0.lock().unwrap()),
        })
    }
}

/// The sweeper waits as long after an execution's end as after a run's creation: a run
/// created an hour ago whose execution was stopped seconds ago is left to
/// `execution-events` (its status change may be on its way); once the end is old, the
/// sweeper closes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_leaves_a_run_whose_execution_ended_a_moment_ago() {
    use campaign_shared::ports::NewRun;
    let env = AwsEnv::start().await;
    let now = time::OffsetDateTime::now_utc();
    let hour_ago = now - time::Duration::hours(1);
    let old_ms = (hour_ago.unix_timestamp_nanos() / 1_000_000) as u64;
    let run_id = RunId::from_ulid(ulid::Ulid::from_parts(old_ms, 42));
    env.store
        .create_run(NewRun {
            run_id,
            ..NewRun::first(
                campaign_shared::domain::Brief::from_value(&campaign_tests::example_brief())
                    .unwrap(),
                campaign_shared::domain::ExecutionMode::Parallel,
                hour_ago,
            )
        })
        .await
        .unwrap();
    let workflow = std::sync::Arc::new(EndedAt(Mutex::new(now - time::Duration::seconds(10))));
    let deps = campaign_shared::ports::Deps {
        workflow: workflow.clone(),
        ..env.deps.clone()
    };
    let min_age = std::time::Duration::from_secs(300);
    let report = usecases::sweep(&deps, min_age).await.unwrap();
    assert_eq!(report.checked, 1);
    assert!(report.reconciled.is_empty(), "{report:?}");
    assert_eq!(
        env.store.get_run(run_id).await.unwrap().status,
        Status::Queued
    );
    // Ten minutes after the end, the run is closed as the stop would have closed it.
    *workflow.0.lock().unwrap() = now - time::Duration::minutes(10);
    let report = usecases::sweep(&deps, min_age).await.unwrap();
    assert_eq!(report.reconciled.len(), 1, "{report:?}");
    assert_eq!(
        env.store.get_run(run_id).await.unwrap().status,
        Status::Cancelled
    );
}
