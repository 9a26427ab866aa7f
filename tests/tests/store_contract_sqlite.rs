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
