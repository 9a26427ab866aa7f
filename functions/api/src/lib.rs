//! The `api` function: the shared HTTP router behind API Gateway (HTTP API, payload v2).
//! Starting a run starts a Step Functions execution named by the run id; cancel stops it.

use std::sync::Arc;

use campaign_shared::adapters::aws::admission::{AwsLimits, DynamoAdmission};
use campaign_shared::adapters::aws::config::{
    AwsConfig, ConfigError, MAX_IN_FLIGHT, MODE_POLICY, RATE_LIMIT, STATE_MACHINE_ARN,
    STATUS_QUEUE_URL, TABLE_NAME, WEBSOCKET_URL,
};
use campaign_shared::http::{ApiState, ClientKey, router};
use campaign_shared::ports::{Admission, Deps};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

pub const ENV: &[&str] = &[
    TABLE_NAME,
    STATUS_QUEUE_URL,
    STATE_MACHINE_ARN,
    WEBSOCKET_URL,
    MODE_POLICY,
    MAX_IN_FLIGHT,
    RATE_LIMIT,
];

/// The limits of `MAX_IN_FLIGHT` and `RATE_LIMIT` (each off when empty).
pub fn limits(config: &AwsConfig) -> AwsLimits {
    AwsLimits {
        max_in_flight: config.max_in_flight,
        rate: config.rate_limit,
    }
}

/// Who is asking, from API Gateway's request context: the JWT's `sub`, else the IAM
/// caller, else the source IP (an Authorization header is no key on AWS: SigV4 signs
/// every request differently).
pub fn client_key(ctx: Option<&RequestContext>) -> Option<String> {
    let RequestContext::ApiGatewayV2(c) = ctx? else {
        return None;
    };
    let auth = c.authorizer.as_ref();
    if let Some(sub) = auth
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.claims.get("sub"))
    {
        return Some(format!("jwt:{sub}"));
    }
    if let Some(arn) = auth
        .and_then(|a| a.iam.as_ref())
        .and_then(|i| i.user_arn.as_ref().or(i.caller_id.as_ref()))
    {
        return Some(format!("iam:{arn}"));
    }
    c.http.source_ip.as_ref().map(|ip| format!("ip:{ip}"))
}

/// The router this function serves. SSE is local-only; AWS clients use the WebSocket API,
/// whose URL responses give as `links.ws`. New runs pass the DynamoDB-kept limits (when
/// configured) besides the HTTP API stage's throttling.
pub fn app(
    deps: Deps,
    config: &AwsConfig,
    dynamodb: aws_sdk_dynamodb::Client,
) -> Result<axum::Router, ConfigError> {
    let limits = limits(config);
    let admission: Option<Arc<dyn Admission>> = if limits == AwsLimits::default() {
        None
    } else {
        let table = config.table()?;
        Some(Arc::new(DynamoAdmission::new(dynamodb, table, limits)))
    };
    let router = router(ApiState {
        deps,
        live: None,
        ws_url: config.websocket_url.clone().unwrap_or_default(),
        admission,
    });
    Ok(router.layer(axum::middleware::from_fn(
        |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
            if let Some(key) = client_key(req.request_context_ref()) {
                req.extensions_mut().insert(ClientKey(key));
            }
            next.run(req).await
        },
    )))
}
