//! The `api` Lambda: init tracing, build config and clients once, serve the router.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    campaign_lambda::init_tracing();
    let config = campaign_lambda::config_or_exit(campaign_api::ENV);
    let clients = campaign_lambda::Clients::load().await;
    let deps = campaign_lambda::deps(&config, &clients)?;
    lambda_http::run(campaign_api::app(deps, &config)).await
}
