//! The RunStore contract against the SQLite store (a real file in a temp dir).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use campaign_shared::adapters::local::sqlite::SqliteStore;
use campaign_tests::store_contract::Store;

async fn sqlite() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("contract.db")).unwrap();
    // Keep the directory for the life of the test process: the file must outlive `dir`.
    std::mem::forget(dir);
    Arc::new(store)
}

campaign_tests::store_contract_tests!(sqlite());
