//! Typed configuration from environment variables, read once per cold start. Each
//! function declares the variables it needs; a missing or malformed one fails start-up
//! with its name.

use crate::domain::ModePolicy;

/// Every variable the functions read, with what it is for (the README table and the
/// template check use this list).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        TABLE_NAME,
        "the DynamoDB table (runs, events, artifacts, connections)",
    ),
    (
        STATUS_QUEUE_URL,
        "SQS queue of lifecycle events for the notifier",
    ),
    (
        DEFERRED_AUDIT_QUEUE_URL,
        "SQS queue of runs whose audit was deferred",
    ),
    (
        STATE_MACHINE_ARN,
        "the Step Functions state machine running statemachine.asl.json",
    ),
    (
        WEBSOCKET_ENDPOINT,
        "https endpoint of the WebSocket API stage, for post_to_connection",
    ),
    (
        WEBSOCKET_URL,
        "wss URL of the WebSocket API stage, given to clients as links.ws",
    ),
    (
        BEDROCK_MODEL_ID,
        "an agent's Amazon Bedrock model or inference profile id; empty: the built-in generator",
    ),
    (
        MODE_POLICY,
        "the default execution mode and when `auto` runs sequential (`default=auto,p95-ms=8000`); empty: parallel, p95 20000 ms, throttled 20%, window 20",
    ),
    (
        MAX_IN_FLIGHT,
        "the most runs in flight at once (429 beyond); empty: no limit",
    ),
    (
        RATE_LIMIT,
        "new runs per second per client, with its burst (`50/100`); empty: no limit",
    ),
];

/// Variables a function may leave empty (or unset): reading one gives `None`.
pub const OPTIONAL: &[&str] = &[BEDROCK_MODEL_ID, MODE_POLICY, MAX_IN_FLIGHT, RATE_LIMIT];

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const STATUS_QUEUE_URL: &str = "STATUS_QUEUE_URL";
pub const DEFERRED_AUDIT_QUEUE_URL: &str = "DEFERRED_AUDIT_QUEUE_URL";
pub const STATE_MACHINE_ARN: &str = "STATE_MACHINE_ARN";
pub const WEBSOCKET_ENDPOINT: &str = "WEBSOCKET_ENDPOINT";
pub const WEBSOCKET_URL: &str = "WEBSOCKET_URL";
pub const BEDROCK_MODEL_ID: &str = "BEDROCK_MODEL_ID";
pub const MODE_POLICY: &str = "MODE_POLICY";
pub const MAX_IN_FLIGHT: &str = "MAX_IN_FLIGHT";
pub const RATE_LIMIT: &str = "RATE_LIMIT";
/// Optional, for tests and game days only: fault specs as `campaign --fault` takes them,
/// comma-separated (`copy=error,audit=unavailable`). Not set in the template.
pub const FAULTS: &str = "CAMPAIGN_FAULTS";

/// `RATE` or `RATE/BURST` (new runs per second per client; the burst defaults to twice
/// the rate).
pub fn parse_rate(v: &str) -> Option<(u32, u32)> {
    let (rate, burst) = match v.split_once('/') {
        Some((r, b)) => (r.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let r: u32 = v.trim().parse().ok()?;
            (r, r.saturating_mul(2))
        }
    };
    (rate >= 1 && burst >= 1).then_some((rate, burst))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing environment variable {0} ({1})")]
    Missing(&'static str, &'static str),
    #[error("environment variable {name} is malformed: {why}")]
    Malformed { name: &'static str, why: String },
}

/// One function's configuration, typed: exactly the variables it declared, each read and
/// checked once at cold start. A variable not declared (or left empty where that is
/// allowed) is `None`.
#[derive(Debug, Clone, Default)]
pub struct AwsConfig {
    pub table_name: Option<String>,
    pub status_queue_url: Option<String>,
    pub deferred_audit_queue_url: Option<String>,
    pub state_machine_arn: Option<String>,
    pub websocket_endpoint: Option<String>,
    pub websocket_url: Option<String>,
    pub bedrock_model_id: Option<String>,
    /// `MODE_POLICY`, or the defaults.
    pub mode_policy: ModePolicy,
    pub max_in_flight: Option<u32>,
    /// `RATE_LIMIT`: new runs per second per client, and the burst.
    pub rate_limit: Option<(u32, u32)>,
}

fn describe(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or("")
}

fn malformed(name: &'static str, v: &str) -> ConfigError {
    ConfigError::Malformed {
        name,
        why: format!("`{v}` is not a {}", describe(name)),
    }
}

/// `v` when `ok` says it is well formed.
fn checked(name: &'static str, v: String, ok: bool) -> Result<Option<String>, ConfigError> {
    if ok {
        Ok(Some(v))
    } else {
        Err(malformed(name, &v))
    }
}

impl AwsConfig {
    /// Reads `needs` through `get` (the process environment in production).
    pub fn load(
        needs: &[&'static str],
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<AwsConfig, ConfigError> {
        let mut c = AwsConfig::default();
        for &name in needs {
            let v = get(name).filter(|v| !v.trim().is_empty());
            let v = match v {
                Some(v) => v,
                None if OPTIONAL.contains(&name) => continue,
                None => return Err(ConfigError::Missing(name, describe(name))),
            };
            let url = |v: &str| v.starts_with("https://") || v.starts_with("http://");
            match name {
                TABLE_NAME => c.table_name = Some(v),
                STATUS_QUEUE_URL => c.status_queue_url = checked(name, v.clone(), url(&v))?,
                DEFERRED_AUDIT_QUEUE_URL => {
                    c.deferred_audit_queue_url = checked(name, v.clone(), url(&v))?
                }
                WEBSOCKET_ENDPOINT => c.websocket_endpoint = checked(name, v.clone(), url(&v))?,
                STATE_MACHINE_ARN => {
                    let ok = v.starts_with("arn:") && v.contains(":stateMachine:");
                    c.state_machine_arn = checked(name, v, ok)?
                }
                WEBSOCKET_URL => {
                    let ok = v.starts_with("wss://") || v.starts_with("ws://");
                    c.websocket_url = checked(name, v, ok)?
                }
                BEDROCK_MODEL_ID => {
                    let ok = !v.contains(char::is_whitespace)
                        && !v.starts_with("arn:")
                        && v.len() <= 256;
                    c.bedrock_model_id = checked(name, v, ok)?
                }
                MODE_POLICY => {
                    c.mode_policy = ModePolicy::parse_spec(&v)
                        .map_err(|why| ConfigError::Malformed { name, why })?
                }
                MAX_IN_FLIGHT => {
                    c.max_in_flight = Some(
                        v.parse()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| malformed(name, &v))?,
                    )
                }
                RATE_LIMIT => {
                    c.rate_limit = Some(parse_rate(&v).ok_or_else(|| malformed(name, &v))?)
                }
                other => {
                    return Err(ConfigError::Malformed {
                        name: other,
                        why: "not a variable the functions read".into(),
                    });
                }
            }
        }
        Ok(c)
    }

    pub fn from_env(needs: &[&'static str]) -> Result<AwsConfig, ConfigError> {
        AwsConfig::load(needs, |n| std::env::var(n).ok())
    }

    /// The table: every function declares `TABLE_NAME`.
    pub fn table(&self) -> Result<&str, ConfigError> {
        AwsConfig::required(&self.table_name, TABLE_NAME, "declared by every function")
    }

    /// A value the caller needs: it, or the error naming its variable.
    pub fn required<'a>(
        value: &'a Option<String>,
        name: &'static str,
        why: &'static str,
    ) -> Result<&'a str, ConfigError> {
        value.as_deref().ok_or(ConfigError::Missing(name, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let e = AwsConfig::load(&[TABLE_NAME, STATUS_QUEUE_URL], |n| {
            (n == TABLE_NAME).then(|| "t".into())
        })
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::Missing(STATUS_QUEUE_URL, describe(STATUS_QUEUE_URL))
        );
        assert!(e.to_string().contains("STATUS_QUEUE_URL"));
    }

    #[test]
    fn a_malformed_value_is_refused_by_name() {
        for (name, bad) in [
            (STATE_MACHINE_ARN, "flow"),
            (STATUS_QUEUE_URL, "queue"),
            (WEBSOCKET_URL, "https://not-a-websocket"),
            (MAX_IN_FLIGHT, "0"),
            (RATE_LIMIT, "fast"),
            (MODE_POLICY, "default=sometimes"),
        ] {
            let e = AwsConfig::load(&[name], |_| Some(bad.into())).unwrap_err();
            assert!(
                matches!(e, ConfigError::Malformed { name: n, .. } if n == name),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn an_optional_variable_may_be_empty() {
        let c = AwsConfig::load(&[BEDROCK_MODEL_ID], |_| Some(String::new())).unwrap();
        assert_eq!(c.bedrock_model_id, None);
        let c = AwsConfig::load(&[BEDROCK_MODEL_ID], |_| {
            Some("amazon.nova-lite-v1:0".into())
        })
        .unwrap();
        assert_eq!(c.bedrock_model_id.as_deref(), Some("amazon.nova-lite-v1:0"));
        assert!(AwsConfig::load(&[BEDROCK_MODEL_ID], |_| Some("nova lite".into())).is_err());
    }

    #[test]
    fn declared_variables_are_read_typed() {
        let c = AwsConfig::load(&[TABLE_NAME, MAX_IN_FLIGHT, RATE_LIMIT, MODE_POLICY], |n| {
            Some(
                match n {
                    TABLE_NAME => "campaigns",
                    MAX_IN_FLIGHT => "20",
                    RATE_LIMIT => "5",
                    _ => "default=sequential",
                }
                .into(),
            )
        })
        .unwrap();
        assert_eq!(c.table_name.as_deref(), Some("campaigns"));
        assert_eq!(c.max_in_flight, Some(20));
        assert_eq!(c.rate_limit, Some((5, 10)));
        assert_eq!(
            c.mode_policy,
            ModePolicy::parse_spec("default=sequential").unwrap()
        );
        // Not declared: absent, whatever the environment holds.
        assert_eq!(c.state_machine_arn, None);
    }
}
