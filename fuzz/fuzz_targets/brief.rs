//! Fuzzes brief parsing and validation: any bytes must give a brief or a clear error —
//! never a panic, never an empty explanation — and an accepted brief must validate again
//! to itself, hold no control character, and give artifacts without control characters
//! whose SVG preview is well-formed XML.

#![no_main]

use campaign_shared::agents::generate;
use campaign_shared::domain::brief::is_forbidden_char;
use campaign_shared::domain::{Agent, Brief, BriefError, Content, RunId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Brief::parse(data) {
        Ok(brief) => {
            let again = Brief::from_value(&serde_json::to_value(&brief).expect("serializes")).expect("revalidates");
            assert_eq!(again, brief);
            assert!(!brief_text(&brief).chars().any(is_forbidden_char), "a control character was accepted");
            for agent in Agent::ALL {
                let Ok(content) = generate(agent, &brief, RunId::new()) else { continue };
                for (field, t) in content.text_fields() {
                    assert!(!t.chars().any(is_forbidden_char), "{agent} {field}: {t:?}");
                }
                if let Content::Visual(v) = &content {
                    roxmltree::Document::parse(&v.svg).expect("the SVG preview is well-formed XML");
                }
            }
        }
        Err(BriefError::Invalid(v)) => {
            assert!(!v.is_empty());
            assert!(v.iter().all(|v| !v.field.is_empty() && !v.message.is_empty()));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});

/// Every free text of the brief, joined.
fn brief_text(b: &Brief) -> String {
    let g = &b.brand_guidelines;
    [b.objective.as_str(), &b.audience, &b.product, &b.tone]
        .into_iter()
        .chain(b.constraints.prohibited_terms.iter().map(String::as_str))
        .chain(g.tone_adjectives.iter().map(String::as_str))
        .chain(g.palette.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}
