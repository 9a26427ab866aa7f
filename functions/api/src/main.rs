//! The `api` Lambda: init logs and metrics, build config and clients once, serve the router.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let metrics = campaign_lambda::init();
    let config = campaign_lambda::config_or_exit(campaign_api::ENV);
    let clients = campaign_shared::runtime::aws::Clients::load().await;
    let deps = campaign_shared::runtime::aws::deps(&config, &clients).await?;
    let app = campaign_api::app(deps, &config, clients.dynamodb.clone())?;
    metrics_cloudwatch_embedded::lambda::service::run_http(metrics, app).await
}
