//! What every built-in generator starts from and ends with: the brief's words, cleaned
//! ([`Inputs`]), the one error a generator can end in, and the last cleaning of a finished
//! piece of text ([`finish`]). `generate` (copy, social) and `visual` both build on it, so
//! neither needs the other's internals.

use super::detect;
use super::text::{bare, char_len, decapitalize, fit, sanitize, tidy};
use crate::domain::Brief;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    /// The brief's prohibited terms (or personal data in it) leave nothing usable to say.
    #[error("nothing acceptable is left to write: {0}")]
    NothingLeft(String),
}

/// The brief's words, cleaned, with short forms for headlines.
pub(crate) struct Inputs {
    pub product: String,
    pub product_short: String,
    pub audience: String,
    pub audience_short: String,
    pub objective: String,
    pub tone: String,
    pub adjectives: Vec<String>,
    pub prohibited: Vec<String>,
}

/// Words a shortened phrase must not end on.
const DANGLING: &[&str] = &[
    "who", "that", "which", "with", "and", "or", "for", "of", "the", "a", "an", "to", "in", "on",
    "at", "by", "aged",
];

/// A short form of `s` for headlines: the phrase up to a relative clause ("who", "that",
/// "which") or a comma, at most `words` words and `max` characters, never ending on a
/// dangling function word.
fn short(s: &str, words: usize, max: usize) -> String {
    let mut cut: Vec<&str> = Vec::new();
    for w in s.split(' ') {
        let lw = w.to_lowercase();
        if !cut.is_empty() && matches!(lw.as_str(), "who" | "that" | "which" | "whose") {
            break;
        }
        cut.push(w);
        if w.ends_with([',', ';', ':']) || cut.len() == words {
            break;
        }
    }
    while cut.len() > 1
        && cut
            .last()
            .is_some_and(|w| DANGLING.contains(&bare(w).to_lowercase().as_str()))
    {
        cut.pop();
    }
    let t = bare(cut.join(" ").trim_end_matches([',', ';', ':']));
    if char_len(&t) <= max {
        t
    } else {
        bare(&fit(&t, max + 1).replace('…', ""))
    }
}

/// `text` cleaned, or the first of `fallbacks` that survives cleaning.
fn clean_or(text: &str, fallbacks: &[&str], prohibited: &[String]) -> String {
    let t = sanitize(text, prohibited);
    if !t.is_empty() {
        return t;
    }
    fallbacks
        .iter()
        .map(|f| sanitize(f, prohibited))
        .find(|f| !f.is_empty())
        .unwrap_or_default()
}

impl Inputs {
    pub fn from(brief: &Brief) -> Result<Inputs, GenerateError> {
        let p = brief.constraints.prohibited_terms.clone();
        let product = clean_or(
            &brief.product,
            &["our new launch", "our launch", "the launch", "it"],
            &p,
        );
        if product.is_empty() {
            return Err(GenerateError::NothingLeft(
                "the product name is made only of prohibited terms".into(),
            ));
        }
        let audience = clean_or(&brief.audience, &["people like you", "you"], &p);
        let objective = bare(&sanitize(&brief.objective, &p));
        let tone = sanitize(&brief.tone, &p);
        let adjectives: Vec<String> = brief
            .brand_guidelines
            .tone_adjectives
            .iter()
            .map(|a| sanitize(a, &p).to_lowercase())
            .filter(|a| !a.is_empty())
            .collect();
        Ok(Inputs {
            product_short: short(&product, 4, 32),
            audience_short: short(&decapitalize(&audience), 5, 40),
            product,
            audience: decapitalize(&audience),
            objective,
            tone,
            adjectives,
            prohibited: p,
        })
    }

    /// "bold, friendly and optimistic", or the tone when no adjectives were given.
    pub fn manner(&self) -> String {
        match self.adjectives.as_slice() {
            [] if !self.tone.is_empty() => self.tone.to_lowercase(),
            [] => "clear".into(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }
}

/// Cleans a finished piece of text again (composition can join words into a term) and
/// refuses it if anything remains.
pub(crate) fn finish(text: &str, max: usize, p: &[String]) -> String {
    let clean = sanitize(&fit(&tidy(text), max), p);
    // Cutting and cleaning can only shorten; one more fit keeps the guarantee simple.
    let t = fit(&clean, max);
    // `sanitize` returns only text its detectors find nothing in: only a cut needs a look.
    if t == clean || detect::error_hits(&t, p).is_empty() {
        t
    } else {
        String::new()
    }
}
