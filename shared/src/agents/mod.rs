//! Generation agents and the compliance audit: the built-in deterministic generators
//! (copy, social, visual with an SVG preview) and the rule-based audit. The generators
//! clean their text with the audit's own detectors (`detect`), so what they write passes
//! the audit's error rules by construction — and the property tests check it.

pub mod audit;
pub mod detect;
mod generate;
mod inputs;
pub mod model;
pub mod text;
mod visual;

pub use audit::audit;
pub use generate::{generate, visual_from_text};
pub use inputs::GenerateError;

use crate::domain::tags::normalize_tags;
use crate::domain::{Agent, Brief};

/// Tags of an agent's artifact: the agent, the execution mode, the tone words, the
/// adjectives and the product — normalized, and never a prohibited term.
pub fn tags_for(agent: Agent, brief: &Brief) -> Vec<String> {
    let mut raw: Vec<String> = vec![agent.as_str().into(), brief.execution_mode.as_str().into()];
    raw.extend(
        brief
            .tone
            .split([',', '/'])
            .map(str::trim)
            .map(String::from),
    );
    raw.extend(brief.brand_guidelines.tone_adjectives.iter().cloned());
    raw.push(brief.product.chars().take(40).collect());
    raw.retain(|t| t.chars().count() <= 40);
    let clean = detect::clean_each(&raw, &brief.constraints.prohibited_terms);
    normalize_tags(raw.iter().zip(clean).filter(|(_, ok)| *ok).map(|(t, _)| t))
}

#[cfg(test)]
mod tests;

/// Every string of up to `len` pieces drawn from `pieces`, the empty one included: the
/// inputs of the exhaustive tests that tie a fast path to the code it stands in for.
#[cfg(test)]
pub(crate) fn every_string(pieces: &[&str], len: u32) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..len {
        last = last
            .iter()
            .flat_map(|s| pieces.iter().map(move |p| format!("{s}{p}")))
            .collect();
        out.extend(last.iter().cloned());
    }
    out
}
