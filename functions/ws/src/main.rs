//! The `ws` Lambda: init logs and metrics, build config and clients once, run.

use campaign_shared::ports::{Pusher, RunStore, Subscriptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let metrics = campaign_lambda::init();
    let config = campaign_lambda::config_or_exit(campaign_ws::ENV);
    let clients = campaign_shared::runtime::aws::Clients::load().await;
    let (connections, pusher) = campaign_shared::runtime::aws::websocket(&config, &clients)?;
    let deps = campaign_shared::runtime::aws::deps(&config, &clients).await?;
    let (connections, pusher, store) = (
        &connections as &dyn Subscriptions,
        &pusher as &dyn Pusher,
        deps.store.as_ref() as &dyn RunStore,
    );
    campaign_lambda::run(
        metrics,
        lambda_runtime::service_fn(move |event| {
            campaign_ws::handler(event, connections, pusher, store)
        }),
    )
    .await
}
