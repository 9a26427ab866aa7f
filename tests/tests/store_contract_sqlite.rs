//! The RunStore contract against the SQLite store (a real file in a temp dir).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use campaign_shared::adapters::local::sqlite::SqliteStore;
use campaign_tests::store_contract::{Guard, Store};

/// A store on a new file; the directory lives as long as the test.
async fn sqlite() -> (Store, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("contract.db")).unwrap();
    (Arc::new(store), Box::new(dir))
}

campaign_tests::store_contract_tests!(sqlite());

/// The SQLite store prunes samples per agent: interleaved agents each keep their newest
/// 1,000 (the largest window a mode policy may ask for).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_keeps_its_newest_thousand_samples_however_the_agents_interleave() {
    use campaign_shared::domain::{Agent, AgentSample};
    use campaign_shared::ports::RunStore;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("samples.db")).unwrap();
    let at = time::OffsetDateTime::now_utc();
    for i in 0..1_050u64 {
        for agent in [Agent::Copy, Agent::Social] {
            store
                .record_sample(AgentSample {
                    agent,
                    at,
                    duration_ms: i,
                    throttled: false,
                })
                .await
                .unwrap();
        }
    }
    for agent in [Agent::Copy, Agent::Social] {
        let kept = store.recent_samples(agent, 5_000).await.unwrap();
        assert_eq!(kept.len(), 1_000, "{agent}");
        assert_eq!(kept[0].duration_ms, 1_049, "newest first");
        assert_eq!(kept[999].duration_ms, 50, "the oldest 50 pruned");
    }
}
