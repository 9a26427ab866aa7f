//! Shared by every function: JSON logs and EMF metrics, the one conversion of failures to
//! Lambda error names (`Diagnostic.error_type`, matched by the ASL's Retry/Catch), and reading
//! the typed configuration at cold start. The wiring itself is `campaign_shared::runtime::aws`.

use lambda_runtime::Diagnostic;
use metrics_cloudwatch_embedded::Collector;

use campaign_shared::adapters::aws::config::AwsConfig;
use campaign_shared::errors::FlowError;
use campaign_shared::ports::StoreError;

/// Logs and metrics of a cold start: `lambda_runtime`'s subscriber, which follows Lambda's
/// advanced logging controls (`AWS_LAMBDA_LOG_FORMAT=JSON` and `AWS_LAMBDA_LOG_LEVEL`, set
/// by the template's `LoggingConfig`; else `RUST_LOG`, default INFO), and the CloudWatch
/// EMF recorder of the `metrics` facade, flushed to stdout after every invocation by
/// [`run`]. Called once, first thing in `main`.
pub fn init() -> &'static Collector {
    lambda_runtime::tracing::init_default_subscriber();
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(campaign_shared::observe::NAMESPACE)
        .with_lambda_request_id("requestId")
        .init();
    match collector {
        Ok(c) => {
            campaign_shared::observe::describe();
            c
        }
        Err(e) => {
            eprintln!("metrics recorder: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the function: `handler` behind `lambda_runtime`'s tracing layer (a span per
/// invocation with its request id) and the EMF layer (metrics flushed per invocation).
/// Errors keep their stable names through `Into<Diagnostic>`.
pub async fn run<A, F, R>(
    metrics: &'static Collector,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    F: tower::Service<lambda_runtime::LambdaEvent<A>, Response = R>,
    F::Future: std::future::Future<Output = Result<R, F::Error>>,
    F::Error: Into<Diagnostic> + std::fmt::Debug,
    A: for<'de> serde::Deserialize<'de>,
    R: serde::Serialize,
{
    metrics_cloudwatch_embedded::lambda::service::run(metrics, handler).await
}

/// A function failure with its stable name.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    pub name: &'static str,
    pub message: String,
}

impl From<FlowError> for FunctionError {
    fn from(e: FlowError) -> Self {
        FunctionError {
            name: e.name(),
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for FunctionError {
    fn from(e: StoreError) -> Self {
        FlowError::from(e).into()
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(e: FunctionError) -> Diagnostic {
        Diagnostic {
            error_type: e.name.to_string(),
            error_message: e.message,
        }
    }
}

/// Reads the configuration or ends the cold start with the variable's name.
pub fn config_or_exit(needs: &[&'static str]) -> AwsConfig {
    match AwsConfig::from_env(needs) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %campaign_shared::errors::Chain(&e), "configuration");
            eprintln!("configuration error: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_errors_become_diagnostics_with_their_names() {
        let d: Diagnostic = FunctionError::from(FlowError::AgentFailed("no".into())).into();
        assert_eq!(d.error_type, "AgentFailed");
        assert_eq!(d.error_message, "no");
        let d: Diagnostic = FunctionError::from(FlowError::Transient("later".into())).into();
        assert_eq!(d.error_type, "Transient");
    }
}
