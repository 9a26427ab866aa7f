//! AWS adapters: DynamoDB store, SQS publisher and deferred-audit queue, Step Functions
//! workflow, WebSocket connections and pushes; and the typed configuration they read.

pub mod config;
pub mod dynamodb;
pub mod sfn;
pub mod sqs;
pub mod websocket;

/// Loads the SDK configuration once per cold start. `AWS_ENDPOINT_URL` (read by the SDK
/// itself) points every client at an emulator in tests.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
