//! The RunStore contract against the DynamoDB store, through the real aws-sdk-rust client,
//! on a moto server.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use campaign_shared::adapters::aws::dynamodb::{DynamoStore, create_table};
use campaign_tests::moto;
use campaign_tests::store_contract::{Guard, Store};

/// A fresh table on a wiped moto, and the guard that keeps other tests off moto until
/// this one ends.
async fn dynamodb() -> (Store, Guard) {
    let (m, guard) = moto::fresh().await;
    let client = aws_sdk_dynamodb::Client::new(&moto::sdk_config(&m.endpoint).await);
    create_table(&client, "campaigns").await.unwrap();
    (
        Arc::new(DynamoStore::new(client, "campaigns")),
        Box::new(guard),
    )
}

campaign_tests::store_contract_tests!(dynamodb());
