//! The DynamoDB store under contention, through the real SDK against moto, with DynamoDB's
//! own `TransactionCanceledException` answers scripted by a loopback proxy: a transaction
//! conflict is resolved inside the store (re-read, re-apply), never handed to Step Functions
//! as a retryable Task error that would re-run an agent that succeeded.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use campaign_shared::adapters::aws::dynamodb::DynamoStore;
use campaign_shared::domain::Change;
use campaign_shared::domain::{Agent, Brief, Status};
use campaign_shared::ports::{Deps, RunStore, StoreError};
use campaign_shared::usecases::{self, TaskFunction};
use campaign_tests::aws_env::{AwsEnv, TABLE};
use campaign_tests::example_brief;
use campaign_tests::fault_proxy::FaultProxy;
use serde_json::json;

fn brief() -> Brief {
    Brief::from_value(&example_brief()).unwrap()
}

async fn proxied(env: &AwsEnv, script: &[&'static str]) -> (FaultProxy, DynamoStore, Deps) {
    let proxy = FaultProxy::start(&env.moto.endpoint, script).await;
    let store = DynamoStore::new(proxy.dynamodb(&env.sdk), TABLE);
    let deps = Deps {
        store: Arc::new(store.clone()),
        keys: Arc::new(store.clone()),
        brands: Arc::new(store.clone()),
        ..env.deps.clone()
    };
    (proxy, store, deps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_agents_finishing_through_transaction_conflicts_each_run_once() {
    let env = AwsEnv::start().await;
    // Conflicts on the first three transactions, as three agents writing one run item get.
    let (proxy, store, deps) = proxied(
        &env,
        &[
            "TransactionConflict",
            "TransactionConflict",
            "TransactionConflict",
        ],
    )
    .await;
    let run_id = usecases::submit(&deps, brief(), None).await.unwrap();
    let steps = Agent::ALL.map(|a| {
        let deps = deps.clone();
        async move {
            TaskFunction::Agent(a)
                .call(&deps, json!({ "runId": run_id }))
                .await
        }
    });
    for (agent, result) in Agent::ALL
        .iter()
        .zip(futures::future::join_all(steps).await)
    {
        // Before the fix: `Transient`, which Step Functions retries by generating again.
        assert!(result.is_ok(), "{agent}: {result:?}");
    }
    assert_eq!(proxy.faults_left(), 0, "every scripted conflict was served");
    let run = store.get_run(run_id).await.unwrap();
    for agent in Agent::ALL {
        assert_eq!(run.agents[&agent].status, Status::Generated);
        assert_eq!(run.agents[&agent].attempts, 1, "{agent} generated once");
    }
    let events = store.events(run_id, 0).await.unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "gapless");
    }
    // Every transaction carries its idempotency token.
    let txs = proxy.transactions();
    assert!(txs.len() >= 7, "{}", txs.len());
    for tx in &txs {
        assert!(
            tx["ClientRequestToken"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{tx}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_the_store_cannot_resolve_is_reported_with_its_reason() {
    let env = AwsEnv::start().await;
    let (_proxy, store, deps) = proxied(&env, &[]).await;
    let run_id = usecases::submit(&deps, brief(), None).await.unwrap();
    let (_proxy, faulty, _) = proxied(&env, &["ItemCollectionSizeLimitExceeded"]).await;
    let err = faulty
        .apply(
            run_id,
            vec![Change::run(Status::Queued, Status::Generating)],
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // The log shows the service's reason, not just "service error".
    let text = err.to_string();
    assert!(text.contains("ItemCollectionSizeLimitExceeded"), "{text}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK error is kept as source"
    );
    // Nothing was applied.
    assert_eq!(store.get_run(run_id).await.unwrap().status, Status::Queued);
}

/// A transaction whose answer is lost is sent again by the store with the same
/// `ClientRequestToken`, which DynamoDB (here the proxy, as moto ignores tokens) answers
/// without applying it twice. With a new token per attempt the second send would run into
/// the version the first one moved, and the change would be refused as no longer valid.
/// The SDK's own retries are off and an attempt times out after 1 s, so what re-sends is
/// the store's loop (`transact`), not the SDK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_answer_was_lost_is_sent_again_with_its_token_and_applied_once() {
    let env = AwsEnv::start().await;
    let run_id = usecases::submit(&env.deps, brief(), None).await.unwrap();
    let proxy = FaultProxy::start(&env.moto.endpoint, &["LostAnswer"]).await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&env.sdk)
            .endpoint_url(&proxy.endpoint)
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(std::time::Duration::from_secs(1))
                    .build(),
            )
            .build(),
    );
    let store = DynamoStore::new(client, TABLE);
    store
        .apply(
            run_id,
            vec![Change::run(Status::Queued, Status::Generating)],
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(proxy.faults_left(), 0);
    let txs = proxy.transactions();
    assert_eq!(txs.len(), 2, "sent, answer lost, sent again: {txs:?}");
    assert_eq!(txs[0]["ClientRequestToken"], txs[1]["ClientRequestToken"]);
    let events = store.events(run_id, 0).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2], "applied once");
    assert_eq!(
        store.get_run(run_id).await.unwrap().status,
        Status::Generating
    );
}

/// WebSocket subscribers are read with a consistent read, so a client that subscribed a
/// moment ago gets the next event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_are_read_consistently() {
    use campaign_shared::ports::Subscriptions;
    let env = AwsEnv::start().await;
    let run_id = usecases::submit(&env.deps, brief(), None).await.unwrap();
    let (proxy, _, _) = proxied(&env, &[]).await;
    let connections = DynamoStore::new(proxy.dynamodb(&env.sdk), TABLE);
    let now = time::OffsetDateTime::now_utc();
    connections.subscribe("c1", run_id, now).await.unwrap();
    proxy.clear_requests();
    assert_eq!(
        connections.subscribers(run_id, now).await.unwrap(),
        vec!["c1".to_string()]
    );
    let reads = proxy.requests();
    assert!(!reads.is_empty());
    for (op, body) in &reads {
        assert_eq!(op, "Query", "{body}");
        assert_eq!(body["ConsistentRead"], true, "{body}");
    }
}

/// `GET /campaigns` reads run summaries from the sharded index projection: one query per
/// shard, no item reads (assembling full runs would cost a read per run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_page_is_one_index_query_per_shard_and_no_item_reads() {
    use campaign_shared::adapters::aws::dynamodb::{GSI_RUNS, RUN_SHARDS};
    let env = AwsEnv::start().await;
    for _ in 0..5 {
        usecases::submit(&env.deps, brief(), None).await.unwrap();
    }
    let (proxy, store, _) = proxied(&env, &[]).await;
    let page = store.list_runs(10, None, None).await.unwrap();
    assert_eq!(page.runs.len(), 5);
    let reads = proxy.requests();
    assert_eq!(reads.len() as u128, RUN_SHARDS, "{reads:?}");
    let mut shards = std::collections::BTreeSet::new();
    for (op, body) in &reads {
        assert_eq!(op, "Query", "{body}");
        assert_eq!(body["IndexName"], GSI_RUNS, "{body}");
        shards.insert(body["ExpressionAttributeValues"].to_string());
    }
    assert_eq!(shards.len() as u128, RUN_SHARDS, "every shard queried once");
}
