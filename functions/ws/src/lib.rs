//! The `ws` function: WebSocket API routes. `$connect` records the connection (with TTL),
//! `$disconnect` forgets it, `subscribe` (`{"action":"subscribe","runId":…,"after":SEQ}`)
//! subscribes it to a run and replays the events after `after`, so a client that
//! reconnects misses nothing; later events come through the notifier.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use campaign_lambda::FunctionError;
use campaign_shared::adapters::aws::config::{TABLE_NAME, WEBSOCKET_ENDPOINT};
use campaign_shared::domain::RunId;
use campaign_shared::errors::{FlowError, chain};
use campaign_shared::ports::{PushError, Pusher, RunStore, Subscriptions};
use lambda_runtime::LambdaEvent;
use serde::Deserialize;
use time::OffsetDateTime;

pub const ENV: &[&str] = &[TABLE_NAME, WEBSOCKET_ENDPOINT];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    #[allow(dead_code)]
    action: String,
    #[serde(rename = "runId")]
    run_id: String,
    #[serde(default)]
    after: u64,
}

fn reply(status: i64, body: &str) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = Some(body.to_string().into());
    r
}

pub async fn handler(
    event: LambdaEvent<ApiGatewayWebsocketProxyRequest>,
    connections: &dyn Subscriptions,
    pusher: &dyn Pusher,
    store: &dyn RunStore,
) -> Result<ApiGatewayProxyResponse, FunctionError> {
    let ctx = &event.payload.request_context;
    let Some(conn) = ctx.connection_id.clone() else {
        return Ok(reply(400, "missing connection id"));
    };
    let now = OffsetDateTime::now_utc();
    match ctx.route_key.as_deref() {
        Some("$connect") => {
            connections.connect(&conn, now).await?;
            Ok(reply(200, "connected"))
        }
        Some("$disconnect") => {
            connections.disconnect(&conn).await?;
            Ok(reply(200, "disconnected"))
        }
        Some("subscribe") => {
            let body = event.payload.body.as_deref().unwrap_or_default();
            let sub: Subscribe = match serde_json::from_str(body) {
                Ok(s) => s,
                Err(e) => {
                    return Ok(reply(
                        400,
                        &format!(
                            "{e}; expected {{\"action\":\"subscribe\",\"runId\":…,\"after\":SEQ}}"
                        ),
                    ));
                }
            };
            let run_id = match RunId::parse(&sub.run_id) {
                Ok(id) => id,
                Err(e) => return Ok(reply(400, &e.to_string())),
            };
            // Subscribe before replaying: an event committed in between arrives twice at
            // worst (clients drop seen seqs), never not at all.
            connections.subscribe(&conn, run_id, now).await?;
            let events = match store.events(run_id, sub.after).await {
                Ok(e) => e,
                Err(campaign_shared::ports::StoreError::NotFound(_)) => {
                    let _ = connections.unsubscribe(&conn, run_id).await;
                    return Ok(reply(404, &format!("no run with id {run_id}")));
                }
                Err(e) => return Err(e.into()),
            };
            for e in events {
                let text = serde_json::to_string(&e)
                    .map_err(|e| FlowError::InvalidInput(e.to_string()))?;
                match pusher.push(&conn, &text).await {
                    Ok(()) => {}
                    Err(PushError::Gone(_)) => {
                        let _ = connections.disconnect(&conn).await;
                        return Ok(reply(410, "gone"));
                    }
                    Err(e) => return Err(FlowError::Transient(chain(&e)).into()),
                }
            }
            Ok(reply(200, "subscribed"))
        }
        other => Ok(reply(
            400,
            &format!("unknown route {other:?}; routes: $connect, $disconnect, subscribe"),
        )),
    }
}
