//! The DynamoDB store under contention, through the real SDK against moto, with DynamoDB's
//! own `TransactionCanceledException` answers scripted by a loopback proxy: a transaction
//! conflict is resolved inside the store (re-read, re-apply), never handed to Step Functions
//! as a retryable Task error that would re-run an agent that succeeded.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use campaign_shared::adapters::aws::dynamodb::DynamoStore;
use campaign_shared::domain::{Agent, Brief, Status};
use campaign_shared::ports::{Change, Deps, RunStore, StoreError};
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
