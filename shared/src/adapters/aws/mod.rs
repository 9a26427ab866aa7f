//! AWS adapters: DynamoDB store, SQS publisher and deferred-audit queue, Step Functions
//! workflow, WebSocket connections and pushes; and the typed configuration they read.

pub mod admission;
pub mod config;
pub mod dynamodb;
pub mod sfn;
pub mod sqs;
pub mod websocket;

/// Loads the SDK configuration once per cold start. `AWS_ENDPOINT_URL` (read by the SDK
/// itself) points every client at an emulator in tests. Every client made from it shares
/// one HTTPS client ([`LazyHttps`]).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(aws_smithy_runtime_api::client::http::SharedHttpClient::new(
            LazyHttps::default(),
        ))
        .load()
        .await
}

/// The SDK's own HTTPS client (hyper, rustls on aws-lc-rs, the platform's root
/// certificates), made on the first request and shared by every SDK client of the process.
///
/// The SDK's default client sets up TLS — reading every root certificate of the system and
/// parsing them into a trust store — each time an SDK client is constructed, to fail early;
/// a function constructs three or four clients at cold start, and that set-up was most of
/// its start-up time (measured: `strace`, exec → first Runtime API `next`). Here it happens
/// once, when the first AWS request needs it, and a function never pays for a client it
/// does not use in an invocation.
#[derive(Debug, Default)]
pub struct LazyHttps {
    inner: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient>,
}

impl aws_smithy_runtime_api::client::http::HttpClient for LazyHttps {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        use aws_smithy_http_client::{ConnectorBuilder, proxy::ProxyConfig, tls};
        self.inner
            .get_or_init(|| {
                // What the SDK's default client builds: rustls on aws-lc, the connector
                // settings (timeouts) and sleep of the calling client, proxies from
                // HTTP_PROXY / HTTPS_PROXY / NO_PROXY.
                aws_smithy_http_client::Builder::new().build_with_connector_fn(
                    |settings, components| {
                        let mut c = ConnectorBuilder::default().tls_provider(
                            tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc),
                        );
                        c.set_connector_settings(settings.cloned());
                        if let Some(components) = components {
                            c.set_sleep_impl(components.sleep_impl());
                        }
                        c.set_proxy_config(Some(ProxyConfig::from_env()));
                        c.build()
                    },
                )
            })
            // Caches one connector per settings (timeouts), as the default client does.
            .http_connector(settings, components)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        // As the default client reports itself (the user agent names it).
        Some(
            aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata::new(
                "hyper",
                Some(std::borrow::Cow::Borrowed("1.x")),
            ),
        )
    }
}

/// An SDK failure as a cause whose message carries the whole chain (the service's code
/// and message, or the transport's cause), not just "service error"; the SDK error stays
/// its source. (Every SDK crate's `SdkError` is the one smithy type.)
pub(crate) fn sdk_failure<E, R>(e: aws_sdk_dynamodb::error::SdkError<E, R>) -> crate::ports::Cause
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let context = aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string();
    crate::errors::shown_as(context, e)
}

/// An SDK failure as a store error (see [`sdk_failure`]).
pub(crate) fn sdk_unavailable<E, R>(
    e: aws_sdk_dynamodb::error::SdkError<E, R>,
) -> crate::ports::StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    crate::ports::StoreError::Unavailable(sdk_failure(e))
}
