//! The `notifier` Lambda: init logs and metrics, build config and clients once, run.

use campaign_shared::ports::{Pusher, Subscriptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let metrics = campaign_lambda::init();
    let config = campaign_lambda::config_or_exit(campaign_notifier::ENV);
    let clients = campaign_shared::runtime::aws::Clients::load().await;
    let (connections, pusher) = campaign_shared::runtime::aws::websocket(&config, &clients)?;
    let (connections, pusher) = (&connections as &dyn Subscriptions, &pusher as &dyn Pusher);
    campaign_lambda::run(
        metrics,
        lambda_runtime::service_fn(move |event| {
            campaign_notifier::handler(event, connections, pusher)
        }),
    )
    .await
}
