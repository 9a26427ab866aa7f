//! Typed configuration from environment variables, read once per cold start. Each
//! function declares the variables it needs; a missing or malformed one fails start-up
//! with its name.

use std::collections::BTreeMap;

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

/// The configuration of one function: exactly the variables it declared.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
}

fn describe(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or("")
}

impl Config {
    /// Reads `needs` through `get` (the process environment in production).
    pub fn load(
        needs: &[&'static str],
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut values = BTreeMap::new();
        for &name in needs {
            let v = get(name).filter(|v| !v.trim().is_empty());
            let v = match v {
                Some(v) => v,
                None if OPTIONAL.contains(&name) => continue,
                None => return Err(ConfigError::Missing(name, describe(name))),
            };
            let ok = match name {
                STATUS_QUEUE_URL | DEFERRED_AUDIT_QUEUE_URL | WEBSOCKET_ENDPOINT => {
                    v.starts_with("https://") || v.starts_with("http://")
                }
                STATE_MACHINE_ARN => v.starts_with("arn:") && v.contains(":stateMachine:"),
                WEBSOCKET_URL => v.starts_with("wss://") || v.starts_with("ws://"),
                BEDROCK_MODEL_ID => {
                    !v.contains(char::is_whitespace) && !v.starts_with("arn:") && v.len() <= 256
                }
                MODE_POLICY => {
                    if let Err(why) = crate::domain::ModePolicy::parse_spec(&v) {
                        return Err(ConfigError::Malformed { name, why });
                    }
                    true
                }
                MAX_IN_FLIGHT => v.parse::<u32>().is_ok_and(|n| n >= 1),
                RATE_LIMIT => parse_rate(&v).is_some(),
                _ => true,
            };
            if !ok {
                return Err(ConfigError::Malformed {
                    name,
                    why: format!("`{v}` is not a {}", describe(name)),
                });
            }
            values.insert(name, v);
        }
        Ok(Config { values })
    }

    pub fn from_env(needs: &[&'static str]) -> Result<Config, ConfigError> {
        Config::load(needs, |n| std::env::var(n).ok())
    }

    /// A declared variable. Asking for one not declared is a programming error caught by
    /// the tests of each function.
    pub fn get(&self, name: &'static str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let e = Config::load(&[TABLE_NAME, STATUS_QUEUE_URL], |n| {
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
    fn a_malformed_arn_is_refused() {
        let e = Config::load(&[STATE_MACHINE_ARN], |_| Some("flow".into())).unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Malformed {
                name: STATE_MACHINE_ARN,
                ..
            }
        ));
    }

    #[test]
    fn an_optional_variable_may_be_empty() {
        let c = Config::load(&[BEDROCK_MODEL_ID], |_| Some(String::new())).unwrap();
        assert_eq!(c.get(BEDROCK_MODEL_ID), None);
        let c = Config::load(&[BEDROCK_MODEL_ID], |_| {
            Some("amazon.nova-lite-v1:0".into())
        })
        .unwrap();
        assert_eq!(c.get(BEDROCK_MODEL_ID), Some("amazon.nova-lite-v1:0"));
        assert!(Config::load(&[BEDROCK_MODEL_ID], |_| Some("nova lite".into())).is_err());
    }

    #[test]
    fn declared_variables_are_read() {
        let c = Config::load(&[TABLE_NAME], |_| Some("campaigns".into())).unwrap();
        assert_eq!(c.get(TABLE_NAME), Some("campaigns"));
        assert_eq!(c.get(STATE_MACHINE_ARN), None);
    }
}
