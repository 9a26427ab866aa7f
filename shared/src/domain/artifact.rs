//! Generated artifacts and their audit reports.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::agent::Agent;
use super::ids::{ArtifactId, RunId};

/// Long-form copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyContent {
    pub headline: String,
    pub body: String,
    pub call_to_action: String,
}

/// One short post for one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocialPost {
    pub network: String,
    /// The full post as published, hashtags included.
    pub text: String,
    pub hashtags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocialContent {
    pub posts: Vec<SocialPost>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaletteEntry {
    /// `#RRGGBB`.
    pub hex: String,
    /// What the color is for: background, accent, text…
    pub role: String,
}

/// A poster concept with an SVG preview that renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisualContent {
    pub headline: String,
    pub subheadline: String,
    pub layout: String,
    pub palette: Vec<PaletteEntry>,
    pub imagery: String,
    pub typography: String,
    pub svg: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Copy(CopyContent),
    Social(SocialContent),
    Visual(VisualContent),
}

impl Content {
    pub fn agent(&self) -> Agent {
        match self {
            Content::Copy(_) => Agent::Copy,
            Content::Social(_) => Agent::Social,
            Content::Visual(_) => Agent::Visual,
        }
    }

    /// The named text fields the audit reads; spans refer to these names.
    pub fn text_fields(&self) -> Vec<(String, &str)> {
        match self {
            Content::Copy(c) => vec![
                ("headline".into(), c.headline.as_str()),
                ("body".into(), c.body.as_str()),
                ("callToAction".into(), c.call_to_action.as_str()),
            ],
            Content::Social(s) => s
                .posts
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("posts[{i}].text"), p.text.as_str()))
                .collect(),
            Content::Visual(v) => vec![
                ("headline".into(), v.headline.as_str()),
                ("subheadline".into(), v.subheadline.as_str()),
                ("layout".into(), v.layout.as_str()),
                ("imagery".into(), v.imagery.as_str()),
                ("typography".into(), v.typography.as_str()),
            ],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    /// Its name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

/// Where a finding is: a text field of the content and a character range in it
/// (Unicode scalar values, `start` inclusive, `end` exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub field: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// The verdict follows from the worst finding.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        let verdict = match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Error) => Verdict::Fail,
            Some(Severity::Warning) => Verdict::Warn,
            _ => Verdict::Pass,
        };
        AuditReport { verdict, findings }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub artifact_id: ArtifactId,
    pub run_id: RunId,
    pub agent: Agent,
    pub content: Content,
    pub tags: Vec<String>,
    #[serde(with = "crate::domain::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Absent until audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditReport>,
    /// The model that wrote it, when a model did (absent for the built-in agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelUse>,
}

/// What a model-backed agent's answer cost and took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelUse {
    /// The model id as the provider names it.
    pub model: String,
    /// Tokens of every request (a repair included), as the provider reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Request to the first token of the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<u64>,
    /// Request to the accepted answer, repair included.
    pub latency_ms: u64,
    /// The first answer broke a rule and was repaired.
    pub repaired: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_s_name_is_its_serialized_name() {
        for v in [Verdict::Pass, Verdict::Warn, Verdict::Fail] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }
}
