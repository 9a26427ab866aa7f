//! The `sweeper` Lambda: init logs and metrics, build config and clients once, run.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let metrics = campaign_lambda::init();
    let config = campaign_lambda::config_or_exit(campaign_sweeper::ENV);
    let clients = campaign_shared::runtime::aws::Clients::load().await;
    let deps = campaign_shared::runtime::aws::deps(&config, &clients).await?;
    let deps = &deps;
    campaign_lambda::run(
        metrics,
        lambda_runtime::service_fn(move |event| campaign_sweeper::handler(event, deps)),
    )
    .await
}
