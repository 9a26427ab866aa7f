//! `executionMode: "auto"`: a run starts parallel unless the agents' recent latency (a
//! rolling p95 per agent) or their generator's throttling rate crosses a threshold, in which
//! case it runs sequential. The figures come from samples every agent Task records in the
//! store, so every process (every Lambda) decides from the same history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::agent::Agent;
use super::brief::ExecutionMode;

/// One finished generator call of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSample {
    pub agent: Agent,
    #[serde(with = "crate::domain::rfc3339")]
    pub at: OffsetDateTime,
    /// How long the generator took (a throttled call: until it was refused).
    pub duration_ms: u64,
    /// The generator was throttled (or otherwise failed transiently).
    pub throttled: bool,
}

/// When `auto` falls back to sequential.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModePolicy {
    /// Samples per agent the figures are taken over (the most recent ones).
    pub window: usize,
    /// Fewer samples than this: no figures for that agent (nothing to go on yet).
    pub min_samples: usize,
    /// A p95 generation latency above this, for any agent, means sequential.
    pub p95_ms: u64,
    /// A share of throttled calls above this (0–1), for any agent, means sequential.
    pub throttle_rate: f64,
    /// The mode of briefs that do not say (`default=` of the policy spec): parallel unless set.
    pub default_mode: ExecutionMode,
}

impl Default for ModePolicy {
    fn default() -> Self {
        ModePolicy {
            window: 20,
            min_samples: 3,
            p95_ms: 20_000,
            throttle_rate: 0.2,
            default_mode: ExecutionMode::Parallel,
        }
    }
}

/// What a policy spec may say (`--mode-policy`, `CAMPAIGN_MODE_POLICY`, `MODE_POLICY`).
pub const POLICY_SPEC_USAGE: &str = "comma-separated KEY=VALUE: default=parallel|sequential|auto, p95-ms=N (1–3600000), throttle-rate=R (0–1), window=N (1–1000), min-samples=N (1–window); e.g. \"default=auto,p95-ms=8000\"";

impl ModePolicy {
    /// Parses a spec over the defaults; the error names the bad part and what is allowed.
    pub fn parse_spec(spec: &str) -> Result<ModePolicy, String> {
        let mut p = ModePolicy::default();
        let mut min_given = false;
        for part in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || format!("`{part}`: {POLICY_SPEC_USAGE}");
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v = v.trim();
            let num = |lo: u64, hi: u64| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(n))
                    .ok_or_else(bad)
            };
            match k.trim() {
                "default" => p.default_mode = v.parse().map_err(|_| bad())?,
                "p95-ms" => p.p95_ms = num(1, 3_600_000)?,
                "throttle-rate" => {
                    p.throttle_rate = v
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(bad)?
                }
                "window" => p.window = num(1, 1000)? as usize,
                "min-samples" => {
                    p.min_samples = num(1, 1000)? as usize;
                    min_given = true;
                }
                _ => return Err(bad()),
            }
        }
        if !min_given {
            p.min_samples = p.min_samples.min(p.window);
        }
        if p.min_samples > p.window {
            return Err(format!(
                "min-samples ({}) is over window ({}); {POLICY_SPEC_USAGE}",
                p.min_samples, p.window
            ));
        }
        Ok(p)
    }
}

/// One agent's recent figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentFigures {
    pub samples: usize,
    pub p95_ms: u64,
    pub throttled: usize,
}

/// What `auto` chose for a run, and the figures it chose from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModeDecision {
    pub mode: ExecutionMode,
    pub reason: String,
    pub figures: BTreeMap<Agent, AgentFigures>,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    pub p95_ms: u64,
    pub throttle_rate: f64,
    pub window: usize,
}

/// The p95 of `values` (nearest rank). `None` when empty.
pub fn p95(values: &[u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = (0.95 * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

impl ModePolicy {
    /// Decides from each agent's recent samples (newest first, at most `window` used).
    pub fn decide(&self, samples: &BTreeMap<Agent, Vec<AgentSample>>) -> ModeDecision {
        let mut figures = BTreeMap::new();
        let mut over = Vec::new();
        for (agent, list) in samples {
            let recent = &list[..list.len().min(self.window)];
            if recent.len() < self.min_samples.max(1) {
                continue;
            }
            let durations: Vec<u64> = recent
                .iter()
                .filter(|s| !s.throttled)
                .map(|s| s.duration_ms)
                .collect();
            let throttled = recent.iter().filter(|s| s.throttled).count();
            let f = AgentFigures {
                samples: recent.len(),
                p95_ms: p95(&durations).unwrap_or(0),
                throttled,
            };
            if f.p95_ms > self.p95_ms {
                over.push(format!("{agent} p95 {} ms > {} ms", f.p95_ms, self.p95_ms));
            }
            let rate = throttled as f64 / recent.len() as f64;
            if rate > self.throttle_rate {
                over.push(format!(
                    "{agent} throttled {throttled}/{} > {:.0}%",
                    recent.len(),
                    self.throttle_rate * 100.0
                ));
            }
            figures.insert(*agent, f);
        }
        let (mode, reason) = if over.is_empty() {
            let why = if figures.is_empty() {
                "no recent agent figures yet".to_string()
            } else {
                format!(
                    "recent agent latency and throttling within limits (p95 ≤ {} ms, throttled ≤ {:.0}%)",
                    self.p95_ms,
                    self.throttle_rate * 100.0
                )
            };
            (ExecutionMode::Parallel, why)
        } else {
            (ExecutionMode::Sequential, over.join("; "))
        };
        ModeDecision {
            mode,
            reason,
            figures,
            thresholds: Thresholds {
                p95_ms: self.p95_ms,
                throttle_rate: self.throttle_rate,
                window: self.window,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(agent: Agent, ms: &[u64], throttled: usize) -> Vec<AgentSample> {
        let mut v: Vec<AgentSample> = ms
            .iter()
            .map(|&d| AgentSample {
                agent,
                at: OffsetDateTime::UNIX_EPOCH,
                duration_ms: d,
                throttled: false,
            })
            .collect();
        for _ in 0..throttled {
            v.push(AgentSample {
                agent,
                at: OffsetDateTime::UNIX_EPOCH,
                duration_ms: 5,
                throttled: true,
            });
        }
        v
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        assert_eq!(p95(&[]), None);
        assert_eq!(p95(&[7]), Some(7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(p95(&v), Some(95));
        assert_eq!(p95(&[1, 2, 3, 1000]), Some(1000));
    }

    #[test]
    fn slow_or_throttled_agents_switch_to_sequential_and_say_why() {
        let policy = ModePolicy {
            p95_ms: 100,
            ..ModePolicy::default()
        };
        let mut s = BTreeMap::new();
        s.insert(Agent::Copy, samples(Agent::Copy, &[10, 12, 11], 0));
        let d = policy.decide(&s);
        assert_eq!(d.mode, ExecutionMode::Parallel);
        assert_eq!(d.figures[&Agent::Copy].p95_ms, 12);

        s.insert(Agent::Social, samples(Agent::Social, &[10, 500, 11], 0));
        let d = policy.decide(&s);
        assert_eq!(d.mode, ExecutionMode::Sequential);
        assert!(
            d.reason.contains("social p95 500 ms > 100 ms"),
            "{}",
            d.reason
        );

        s.insert(Agent::Social, samples(Agent::Social, &[10, 10, 10], 0));
        s.insert(Agent::Visual, samples(Agent::Visual, &[10, 10], 2));
        let d = policy.decide(&s);
        assert_eq!(d.mode, ExecutionMode::Sequential);
        assert!(d.reason.contains("visual throttled 2/4"), "{}", d.reason);
    }

    #[test]
    fn too_few_samples_decide_nothing() {
        let policy = ModePolicy {
            p95_ms: 1,
            ..ModePolicy::default()
        };
        let mut s = BTreeMap::new();
        s.insert(Agent::Copy, samples(Agent::Copy, &[900, 900], 0));
        let d = policy.decide(&s);
        assert_eq!(d.mode, ExecutionMode::Parallel);
        assert!(d.figures.is_empty());
        assert_eq!(d.reason, "no recent agent figures yet");
    }

    #[test]
    fn policy_specs_parse_over_the_defaults_and_bad_ones_are_named() {
        let p = ModePolicy::parse_spec("default=auto, p95-ms=8000,window=5,min-samples=2").unwrap();
        assert_eq!(p.default_mode, ExecutionMode::Auto);
        assert_eq!((p.p95_ms, p.window, p.min_samples), (8000, 5, 2));
        assert_eq!(p.throttle_rate, ModePolicy::default().throttle_rate);
        assert_eq!(ModePolicy::parse_spec("").unwrap(), ModePolicy::default());
        // min-samples follows a smaller window when not given.
        assert_eq!(ModePolicy::parse_spec("window=2").unwrap().min_samples, 2);
        for bad in [
            "p95=1",
            "throttle-rate=2",
            "window=0",
            "default=fast",
            "window=2,min-samples=3",
        ] {
            let e = ModePolicy::parse_spec(bad).unwrap_err();
            assert!(e.contains("default=parallel|sequential|auto"), "{bad}: {e}");
        }
    }

    #[test]
    fn only_the_window_counts() {
        let policy = ModePolicy {
            p95_ms: 100,
            window: 3,
            ..ModePolicy::default()
        };
        let mut s = BTreeMap::new();
        // Newest first: three fast calls after two slow ones.
        s.insert(
            Agent::Copy,
            samples(Agent::Copy, &[10, 10, 10, 900, 900], 0),
        );
        assert_eq!(policy.decide(&s).mode, ExecutionMode::Parallel);
    }
}
