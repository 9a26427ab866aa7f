//! The `api` function: the shared HTTP router behind API Gateway (HTTP API, payload v2).
//! Starting a run starts a Step Functions execution named by the run id; cancel stops it.

use campaign_shared::adapters::aws::config::{
    Config, MODE_POLICY, STATE_MACHINE_ARN, STATUS_QUEUE_URL, TABLE_NAME, WEBSOCKET_URL,
};
use campaign_shared::http::{ApiState, router};
use campaign_shared::ports::Deps;

pub const ENV: &[&str] = &[
    TABLE_NAME,
    STATUS_QUEUE_URL,
    STATE_MACHINE_ARN,
    WEBSOCKET_URL,
    MODE_POLICY,
];

/// The router this function serves. SSE is local-only; AWS clients use the WebSocket API,
/// whose URL responses give as `links.ws`.
pub fn app(deps: Deps, config: &Config) -> axum::Router {
    router(ApiState {
        deps,
        live: None,
        ws_url: config.get(WEBSOCKET_URL).unwrap_or_default().to_string(),
        // On AWS the HTTP API stage throttles requests; no in-flight limit yet (README).
        admission: None,
    })
}
