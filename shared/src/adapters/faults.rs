//! Fault injection (`--fault AGENT=error|timeout|panic|slow:DURATION|throttle:N`,
//! `--fault audit=unavailable`; `CAMPAIGN_FAULTS` in the Lambdas), wrapping the built-in
//! generator and auditor.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{Agent, AuditReport, Brief, Content, RunId};
use crate::ports::{AuditUnavailable, Auditor, Generated, Generator, GeneratorError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentFault {
    /// Fails with `AgentFailed` (not retried).
    Error,
    /// Fails with `AgentFailed` the first N times, then works (a retry succeeds).
    ErrorTimes(u32),
    /// Never answers; the Task's TimeoutSeconds ends it with `States.Timeout`.
    Timeout,
    /// Panics inside the agent; reported as `AgentFailed`.
    Panic,
    /// Answers correctly, that long after it was called (or when its generator is done,
    /// if that takes longer): the generator's own work is part of the delay, as a model
    /// service's is part of its answer's latency.
    Slow(Duration),
    /// Refused as throttled (`Transient`, retried by the flow) the first N times, then
    /// works — a model service over its quota.
    Throttle(u32),
}

/// Faults to inject, by agent, and whether the audit is unavailable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub agents: BTreeMap<Agent, AgentFault>,
    pub audit_unavailable: bool,
    /// Every audit answers this long after it was called (`audit=slow:DURATION`).
    pub audit_delay: Option<Duration>,
}

impl Faults {
    /// Parses one `--fault` value and adds it; the error lists what is allowed.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let usage = "expected AGENT=error|error:N|throttle:N|timeout|panic|slow:DURATION (AGENT: copy, social, visual; N: fail — or be throttled — that many times, then work; DURATION like 250ms or 2s), audit=unavailable or audit=slow:DURATION";
        let (target, kind) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}`: {usage}"))?;
        if target == "audit" {
            if kind == "unavailable" {
                self.audit_unavailable = true;
                return Ok(());
            }
            if let Some(d) = kind.strip_prefix("slow:") {
                self.audit_delay = Some(parse_duration(d).map_err(|e| format!("`{spec}`: {e}"))?);
                return Ok(());
            }
            return Err(format!(
                "`{spec}`: the audit faults are `audit=unavailable` and `audit=slow:DURATION`"
            ));
        }
        let agent: Agent = target
            .parse()
            .map_err(|e| format!("`{spec}`: {e}; {usage}"))?;
        let fault = match kind {
            "error" => AgentFault::Error,
            "timeout" => AgentFault::Timeout,
            "panic" => AgentFault::Panic,
            k => match (k.strip_prefix("slow:"), k.strip_prefix("error:")) {
                (Some(d), _) => {
                    AgentFault::Slow(parse_duration(d).map_err(|e| format!("`{spec}`: {e}"))?)
                }
                (_, Some(n)) => match n.parse::<u32>() {
                    Ok(n) if n > 0 => AgentFault::ErrorTimes(n),
                    _ => {
                        return Err(format!(
                            "`{spec}`: `error:{n}` needs a whole number of failures ≥ 1; {usage}"
                        ));
                    }
                },
                _ => match k.strip_prefix("throttle:").map(str::parse::<u32>) {
                    Some(Ok(n)) if n > 0 => AgentFault::Throttle(n),
                    Some(_) => {
                        return Err(format!(
                            "`{spec}`: `throttle:N` needs a whole number of refusals ≥ 1; {usage}"
                        ));
                    }
                    None => return Err(format!("`{spec}`: unknown fault `{k}`; {usage}")),
                },
            },
        };
        self.agents.insert(agent, fault);
        Ok(())
    }
}

/// `250ms`, `2s`, `1.5s`, `1m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; use e.g. 250ms, 2s, 1.5s or 1m");
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(bad)?;
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Waits `d` to within microseconds: tokio's timer rounds up to whole milliseconds, which
/// would add up to a millisecond per simulated call to every measured latency. Sleeps to
/// two milliseconds short of the deadline, then yields until it passes.
pub async fn precise_sleep(d: Duration) {
    precise_sleep_until(tokio::time::Instant::now() + d).await;
}

/// [`precise_sleep`] to an instant (at once if it has passed).
pub async fn precise_sleep_until(deadline: tokio::time::Instant) {
    let early = deadline.checked_sub(Duration::from_millis(2));
    if let Some(early) = early.filter(|e| *e > tokio::time::Instant::now()) {
        tokio::time::sleep_until(early).await;
    }
    while tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Wraps a generator with the configured faults.
#[derive(Debug)]
pub struct FaultyGenerator<G> {
    pub inner: G,
    pub faults: BTreeMap<Agent, AgentFault>,
    /// Failures injected so far, per agent (for `error:N`).
    pub failed: std::sync::Mutex<BTreeMap<Agent, u32>>,
}

impl<G> FaultyGenerator<G> {
    pub fn new(inner: G, faults: BTreeMap<Agent, AgentFault>) -> Self {
        FaultyGenerator {
            inner,
            faults,
            failed: std::sync::Mutex::default(),
        }
    }

    /// Counts one more injected failure of `agent`; whether it is still within `n`.
    fn count_failure(&self, agent: Agent, n: u32) -> bool {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        let count = failed.entry(agent).or_insert(0);
        *count += 1;
        *count <= n
    }
}

#[async_trait]
impl<G: Generator> Generator for FaultyGenerator<G> {
    async fn generate(
        &self,
        agent: Agent,
        brief: &Brief,
        run_id: RunId,
    ) -> Result<Generated, GeneratorError> {
        match self.faults.get(&agent) {
            None => {}
            Some(AgentFault::Error) => {
                return Err(GeneratorError::Failed(
                    format!("injected fault: the {agent} agent failed").into(),
                ));
            }
            Some(AgentFault::ErrorTimes(n)) if self.count_failure(agent, *n) => {
                return Err(GeneratorError::Failed(
                    format!("injected fault: the {agent} agent failed (error:{n})").into(),
                ));
            }
            Some(AgentFault::Throttle(n)) if self.count_failure(agent, *n) => {
                return Err(GeneratorError::Transient(
                    format!(
                        "injected fault: the {agent} agent's model refused the call as throttled (throttle:{n})"
                    )
                    .into(),
                ));
            }
            // Failed or throttled as many times as asked: works from now on.
            Some(AgentFault::ErrorTimes(_) | AgentFault::Throttle(_)) => {}
            Some(AgentFault::Timeout) => std::future::pending::<()>().await,
            Some(AgentFault::Panic) => panic!("injected fault: the {agent} agent panicked"),
            Some(AgentFault::Slow(d)) => {
                let answer_at = tokio::time::Instant::now() + *d;
                let answer = self.inner.generate(agent, brief, run_id).await;
                precise_sleep_until(answer_at).await;
                return answer;
            }
        }
        self.inner.generate(agent, brief, run_id).await
    }
}

/// Wraps an auditor; `unavailable` makes every call fail with `AuditUnavailable`.
#[derive(Debug)]
pub struct FaultyAuditor<A> {
    pub inner: A,
    pub unavailable: std::sync::atomic::AtomicBool,
    /// Every audit answers that long after it was called (its rules' work included).
    pub delay: Option<Duration>,
}

#[async_trait]
impl<A: Auditor> Auditor for FaultyAuditor<A> {
    async fn audit(
        &self,
        content: &Content,
        brief: &Brief,
    ) -> Result<AuditReport, AuditUnavailable> {
        if self.unavailable.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(AuditUnavailable(
                "injected fault: the audit service is unavailable".into(),
            ));
        }
        let answer_at = self.delay.map(|d| tokio::time::Instant::now() + d);
        let report = self.inner.audit(content, brief).await;
        if let Some(at) = answer_at {
            precise_sleep_until(at).await;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::builtin::{BuiltinGenerator, RuleAuditor};
    use std::sync::atomic::{AtomicBool, Ordering};

    fn brief() -> Brief {
        let v = serde_json::from_str(include_str!("../../../examples/brief.json")).unwrap();
        Brief::from_value(&v).unwrap()
    }

    /// The built-in generator and auditor, noting when they are called.
    #[derive(Default)]
    struct Noting(AtomicBool);

    #[async_trait]
    impl Generator for Noting {
        async fn generate(
            &self,
            agent: Agent,
            brief: &Brief,
            run_id: RunId,
        ) -> Result<Generated, GeneratorError> {
            self.0.store(true, Ordering::SeqCst);
            BuiltinGenerator.generate(agent, brief, run_id).await
        }
    }

    #[async_trait]
    impl Auditor for Noting {
        async fn audit(
            &self,
            content: &Content,
            brief: &Brief,
        ) -> Result<AuditReport, AuditUnavailable> {
            self.0.store(true, Ordering::SeqCst);
            RuleAuditor.audit(content, brief).await
        }
    }

    /// `slow:D` is an answer D after the call, the wrapped agent's work inside D: the
    /// agent is called at once (not after the wait, which would make the call take D plus
    /// the agent's work), and the answer comes no sooner than D.
    #[tokio::test]
    async fn a_slow_agent_works_at_once_and_answers_the_delay_after_the_call() {
        let d = Duration::from_millis(40);
        let brief = brief();
        let generator = FaultyGenerator::new(
            Noting::default(),
            BTreeMap::from([(Agent::Copy, AgentFault::Slow(d))]),
        );
        let start = std::time::Instant::now();
        let call = generator.generate(Agent::Copy, &brief, RunId::new());
        tokio::pin!(call);
        assert!(futures::poll!(&mut call).is_pending());
        assert!(
            generator.inner.0.load(Ordering::SeqCst),
            "not called at once"
        );
        let generated = call.await.unwrap();
        assert!(start.elapsed() >= d, "answered after {:?}", start.elapsed());

        let auditor = FaultyAuditor {
            inner: Noting::default(),
            unavailable: AtomicBool::new(false),
            delay: Some(d),
        };
        let start = std::time::Instant::now();
        let call = auditor.audit(&generated.content, &brief);
        tokio::pin!(call);
        assert!(futures::poll!(&mut call).is_pending());
        assert!(auditor.inner.0.load(Ordering::SeqCst), "not called at once");
        call.await.unwrap();
        assert!(start.elapsed() >= d, "answered after {:?}", start.elapsed());
    }

    #[test]
    fn fault_specs_parse_and_bad_ones_say_what_is_allowed() {
        let mut f = Faults::default();
        f.add("copy=error").unwrap();
        f.add("visual=slow:250ms").unwrap();
        f.add("audit=unavailable").unwrap();
        f.add("audit=slow:30ms").unwrap();
        f.add("social=error:2").unwrap();
        assert_eq!(f.agents[&Agent::Social], AgentFault::ErrorTimes(2));
        assert!(f.add("social=error:0").unwrap_err().contains("≥ 1"));
        assert_eq!(f.audit_delay, Some(Duration::from_millis(30)));
        assert_eq!(
            f.agents[&Agent::Visual],
            AgentFault::Slow(Duration::from_millis(250))
        );
        assert!(f.audit_unavailable);
        let e = f.add("tiktok=error").unwrap_err();
        assert!(e.contains("copy, social, visual"), "{e}");
        assert!(
            f.add("copy=explode")
                .unwrap_err()
                .contains("error|error:N|throttle:N|timeout|panic")
        );
        f.add("copy=throttle:2").unwrap();
        assert_eq!(f.agents[&Agent::Copy], AgentFault::Throttle(2));
        assert!(f.add("copy=throttle:0").unwrap_err().contains("throttle:N"));
        assert!(f.add("copy=slow:fast").is_err());
    }
}
