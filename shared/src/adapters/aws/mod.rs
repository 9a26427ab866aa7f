//! AWS adapters: DynamoDB store, SQS publisher and deferred-audit queue, Step Functions
//! workflow, WebSocket connections and pushes; and the typed configuration they read.

pub mod admission;
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

/// An SDK failure as a store error whose message carries the whole chain (the service's
/// code and message, or the transport's cause), not just "service error".
pub(crate) fn sdk_unavailable<E, R>(
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> crate::ports::StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let context = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
    crate::ports::StoreError::Unavailable(Box::new(SdkFailure {
        context,
        source: Box::new(e),
    }))
}

/// Keeps the SDK error as the source and shows its full context.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
struct SdkFailure {
    context: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}
