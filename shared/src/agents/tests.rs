//! Generator tests, and the properties that tie generation to the audit.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::domain::{Content, RunId, Severity, palette};

fn brief(v: Value) -> Brief {
    Brief::from_value(&v).unwrap()
}

fn example() -> Brief {
    brief(json!({
        "objective": "Drive sign-ups for the spring launch",
        "audience": "urban commuters",
        "product": "Aurora e-bike",
        "tone": "energetic",
        "brandGuidelines": {"toneAdjectives": ["bold", "friendly"], "palette": ["teal", "#FF8800"]}
    }))
}

fn run(n: u64) -> RunId {
    RunId::from_ulid(ulid::Ulid::from_parts(1_700_000_000_000 + n, n as u128))
}

#[test]
fn generation_is_deterministic_for_a_brief_and_run_id() {
    let b = example();
    for agent in Agent::ALL {
        assert_eq!(
            generate(agent, &b, run(1)).unwrap(),
            generate(agent, &b, run(1)).unwrap()
        );
    }
    let variants: std::collections::BTreeSet<String> = (0..12)
        .map(|n| serde_json::to_string(&generate(Agent::Copy, &b, run(n)).unwrap()).unwrap())
        .collect();
    assert!(
        variants.len() > 1,
        "different runs should be able to differ"
    );
}

/// Every agent's output for a spread of briefs (each call-to-action branch, with and without
/// adjectives, prohibited terms, short limits) and run ids, hashed: the seed is documented
/// as stable across builds, so the text for a brief and run id is too. A change to the
/// templates changes this digest on purpose; a change meant to be faster must not.
#[test]
fn the_built_in_output_for_a_brief_and_run_id_is_the_same_from_build_to_build() {
    let objectives = [
        "Drive test-ride bookings for the spring launch",
        "Grow newsletter sign-ups",
        "More app downloads this quarter",
        "Lift online sales of the winter range",
        "Bring footfall to the flagship store",
        "Be known for repairs that last",
    ];
    let mut h = fnv::FnvHasher::default();
    for (k, objective) in objectives.iter().enumerate() {
        let mut v = json!({
            "objective": objective,
            "audience": "Urban commuters aged 25-40 who cycle to work",
            "product": "Aurora e-bike",
            "tone": if k % 2 == 0 { "energetic and warm" } else { "calm, expert" },
            "constraints": { "prohibitedTerms": ["cheap", "free"] },
        });
        if k % 3 != 2 {
            v["brandGuidelines"] = json!({"toneAdjectives": ["bold", "friendly", "optimistic"], "palette": ["teal", "#FF8800", "ivory"]});
        }
        if k == 4 {
            v["constraints"]["maxLength"] = json!({ "copy": 300, "social": 120, "visual": 60 });
        }
        let b = brief(v);
        for n in 0..25 {
            for agent in Agent::ALL {
                let out = serde_json::to_string(&generate(agent, &b, run(n)).unwrap()).unwrap();
                std::hash::Hasher::write(&mut h, out.as_bytes());
            }
        }
    }
    assert_eq!(std::hash::Hasher::finish(&h), 9_243_857_198_113_638_040);
}

#[test]
fn copy_is_built_from_the_brief() {
    let Content::Copy(c) = generate(Agent::Copy, &example(), run(2)).unwrap() else {
        panic!()
    };
    let all = format!("{} {} {}", c.headline, c.body, c.call_to_action);
    assert!(all.contains("Aurora e-bike"), "{all}");
    assert!(all.contains("urban commuters"), "{all}");
    assert!(all.to_lowercase().contains("sign"), "{all}");
    assert!(
        c.body.chars().count() > 100,
        "a real body, not a stub: {}",
        c.body
    );
}

#[test]
fn social_has_three_posts_on_distinct_networks_with_hashtags() {
    let Content::Social(s) = generate(Agent::Social, &example(), run(3)).unwrap() else {
        panic!()
    };
    assert!(s.posts.len() >= 3);
    let networks: std::collections::BTreeSet<&str> =
        s.posts.iter().map(|p| p.network.as_str()).collect();
    assert_eq!(networks.len(), s.posts.len());
    for p in &s.posts {
        assert!(!p.hashtags.is_empty(), "{p:?}");
        for h in &p.hashtags {
            assert!(h.starts_with('#') && p.text.contains(h.as_str()), "{p:?}");
        }
        assert!(p.text.chars().count() <= 280);
    }
}

/// A tiny well-formedness check: tags balance and attribute quotes close.
fn assert_well_formed_svg(svg: &str) {
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!rest.contains('<'));
}

#[test]
fn the_visual_concept_uses_the_brand_palette_and_renders_as_svg() {
    let Content::Visual(v) = generate(Agent::Visual, &example(), run(4)).unwrap() else {
        panic!()
    };
    assert_eq!(
        v.palette[0].hex, "#008080",
        "teal through the color-word table"
    );
    assert!(v.palette.iter().any(|p| p.hex == "#FF8800"));
    assert!(v.svg.contains("#008080") && v.svg.contains("#FF8800"));
    assert!(v.svg.contains("viewBox"));
    assert_well_formed_svg(&v.svg);
    assert!(!v.layout.is_empty() && !v.imagery.is_empty() && !v.typography.is_empty());
    assert_eq!(
        audit(&Content::Visual(v), &example()).verdict,
        crate::domain::Verdict::Pass
    );
}

#[test]
fn svg_text_is_escaped() {
    let b = brief(
        json!({"objective": "Sell", "audience": "<everyone> & \"friends\"", "product": "A&B <Co>", "tone": "bold"}),
    );
    for n in 0..6 {
        let Content::Visual(v) = generate(Agent::Visual, &b, run(n)).unwrap() else {
            panic!()
        };
        assert!(!v.svg.contains("A&B"), "unescaped ampersand: {}", v.svg);
        assert_well_formed_svg(&v.svg);
    }
}

#[test]
fn a_palette_is_derived_from_the_tone_when_none_is_given() {
    let b = brief(
        json!({"objective": "Sell", "audience": "everyone", "product": "Kettle", "tone": "calm"}),
    );
    let Content::Visual(v) = generate(Agent::Visual, &b, run(5)).unwrap() else {
        panic!()
    };
    assert_eq!(v.palette[0].hex, palette::parse_color("sage").unwrap().hex);
}

#[test]
fn the_brief_cannot_smuggle_prohibited_terms_or_personal_data_into_the_output() {
    let b = brief(json!({
        "objective": "Sell free upgrades, mail sales@example.com or call 555 010 2030",
        "audience": "people who love FREE stuff",
        "product": "Free-Flow kettle",
        "tone": "bold",
        "constraints": {"prohibitedTerms": ["free"]}
    }));
    for agent in Agent::ALL {
        let c = generate(agent, &b, run(6)).unwrap();
        let r = audit(&c, &b);
        assert!(
            r.findings.iter().all(|f| f.severity != Severity::Error),
            "{agent}: {r:?}"
        );
        assert!(
            !serde_json::to_string(&c)
                .unwrap()
                .to_lowercase()
                .contains("free")
        );
    }
}

#[test]
fn a_product_made_only_of_prohibited_words_falls_back_to_a_neutral_phrase() {
    let b = brief(
        json!({"objective": "Sell", "audience": "everyone", "product": "Cheap", "tone": "bold",
        "constraints": {"prohibitedTerms": ["cheap"]}}),
    );
    let Content::Copy(c) = generate(Agent::Copy, &b, run(7)).unwrap() else {
        panic!()
    };
    assert!(c.body.contains("our new launch"), "{}", c.body);
}

#[test]
fn tags_are_normalized_and_never_prohibited() {
    let b = brief(
        json!({"objective": "Sell", "audience": "everyone", "product": "Aurora e-bike", "tone": "Bold, Cheap",
        "constraints": {"prohibitedTerms": ["cheap"]}, "brandGuidelines": {"toneAdjectives": ["Friendly"]}}),
    );
    let tags = tags_for(Agent::Social, &b);
    assert_eq!(
        tags,
        vec!["aurora-e-bike", "bold", "friendly", "parallel", "social"]
    );
}

// ----------------------------------------------------------------- properties

/// Words the generators' templates use, so prohibited terms sometimes hit them.
const TEMPLATE_WORDS: &[&str] = &[
    "made", "meet", "here", "today", "simple", "discover", "new", "day", "for", "the",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{3,9}",
        "[A-Z][a-z]{2,8}",
        Just("Aurora".to_string()),
        Just("café".to_string()),
        Just("e-bike".to_string()),
    ]
}

fn phrase() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(word(), 1..8),
        prop_oneof![
            3 => Just(String::new()),
            1 => Just(" mail me at ana@example.com".to_string()),
            1 => Just(" call +1 555 010 2030".to_string()),
            1 => Just(" [insert slogan]".to_string()),
            1 => Just(" lorem ipsum".to_string()),
            1 => Just(" the best, guaranteed".to_string()),
        ],
    )
        .prop_map(|(w, extra)| format!("{}{extra}", w.join(" ")))
}

prop_compose! {
    fn arb_brief()(
        objective in phrase(),
        audience in phrase(),
        product in proptest::collection::vec(word(), 1..4),
        tone in prop_oneof![Just("energetic"), Just("calm"), Just("premium"), Just("warm and witty")],
        from_brief in proptest::collection::vec(0usize..20, 0..4),
        random_terms in proptest::collection::vec("[a-z]{3,8}", 0..4),
        copy in 150usize..=5000,
        social in 60usize..=280,
        visual in 40usize..=300,
        adjectives in proptest::collection::vec("[a-z]{3,10}", 0..4),
        palette in proptest::collection::vec(prop_oneof![Just("teal".to_string()), Just("navy blue".to_string()), "#[0-9A-F]{6}"], 0..4),
        mode in prop_oneof![Just("parallel"), Just("sequential")],
    ) -> Brief {
        let product = product.join(" ");
        // Prohibited terms drawn from the brief's own words, plus random ones.
        let words: Vec<String> = format!("{objective} {audience} {product}")
            .split_whitespace()
            .filter(|w| w.chars().all(char::is_alphanumeric))
            .map(str::to_lowercase)
            .collect();
        let mut terms: Vec<String> = from_brief.iter().filter_map(|i| words.get(*i).cloned()).collect();
        terms.extend(random_terms.into_iter().filter(|t| !TEMPLATE_WORDS.contains(&t.as_str())));
        Brief::from_value(&json!({
            "objective": objective, "audience": audience, "product": product, "tone": tone,
            "constraints": {"maxLength": {"copy": copy, "social": social, "visual": visual}, "prohibitedTerms": terms},
            "brandGuidelines": {"toneAdjectives": adjectives, "palette": palette},
            "executionMode": mode,
        })).unwrap()
    }
}

/// An independent check: ASCII-folded, lower-cased text contains `term` on word
/// boundaries (the audit's matcher is more thorough; this one must agree on plain hits).
fn plainly_contains(text: &str, term: &str) -> bool {
    let t = text.to_lowercase();
    let bytes = t.as_bytes();
    let mut from = 0;
    while let Some(i) = t[from..].find(term) {
        let s = from + i;
        let e = s + term.len();
        let before = s == 0 || !(bytes[s - 1] as char).is_alphanumeric();
        let after = e >= t.len() || !(bytes[e] as char).is_alphanumeric();
        if before && after {
            return true;
        }
        from = s + 1;
    }
    false
}

/// Text as a client might send it: mostly letters, now and then a control character, an
/// XML special, a noncharacter, a line or paragraph separator or any character at all.
fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        30 => proptest::char::range('a', 'z'),
        4 => Just(' '),
        2 => proptest::sample::select(vec!['<', '>', '&', '"', '\'', ']', '\u{2028}', '\u{301}', 'é', '\t', '\n', '\r']),
        1 => proptest::char::range('\u{0}', '\u{9f}'),
        1 => proptest::sample::select(vec!['\u{fffe}', '\u{ffff}', '\u{feff}', '\u{fdd0}']),
        1 => any::<char>(),
    ];
    proptest::collection::vec(ch, 1..max).prop_map(|v| v.into_iter().collect())
}

fn hostile_brief() -> impl Strategy<Value = Value> {
    (
        hostile_text(80),
        hostile_text(40),
        hostile_text(30),
        hostile_text(20),
        proptest::collection::vec(hostile_text(12), 0..3),
        proptest::collection::vec(hostile_text(12), 0..3),
        proptest::collection::vec(hostile_text(20), 0..2),
    )
        .prop_map(
            |(objective, audience, product, tone, terms, adjectives, palette)| {
                json!({
                    "objective": objective, "audience": audience, "product": product, "tone": tone,
                    "constraints": {"prohibitedTerms": terms},
                    "brandGuidelines": {"toneAdjectives": adjectives, "palette": palette}
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever a client sends, an accepted brief gives artifacts with no control character
    /// in any text and an SVG preview that is well-formed XML (checked by a real parser).
    #[test]
    fn accepted_briefs_give_text_without_controls_and_svg_that_parses_as_xml(v in hostile_brief(), n in 0u64..1000) {
        let Ok(b) = Brief::from_value(&v) else {
            return Ok(());
        };
        for agent in Agent::ALL {
            let Ok(content) = generate(agent, &b, run(n)) else {
                continue;
            };
            for (field, text) in content.text_fields() {
                prop_assert!(
                    !text.chars().any(crate::domain::brief::is_forbidden_char),
                    "{agent} {field}: {text:?}"
                );
            }
            if let Content::Visual(visual) = &content {
                prop_assert!(!visual.svg.chars().any(crate::domain::brief::is_forbidden_char));
                if let Err(e) = roxmltree::Document::parse(&visual.svg) {
                    prop_assert!(false, "the SVG is not XML: {e}\n{}", visual.svg);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn generated_artifacts_respect_max_length_avoid_prohibited_terms_and_pass_the_audits_error_rules(
        b in arb_brief(), n in 0u64..1000
    ) {
        for agent in Agent::ALL {
            let content = match generate(agent, &b, run(n)) {
                Ok(c) => c,
                Err(GenerateError::NothingLeft(why)) => {
                    // Only when the prohibited terms swallow the product entirely.
                    prop_assert!(!b.constraints.prohibited_terms.is_empty(), "{agent} failed without prohibited terms: {why}");
                    continue;
                }
            };
            let max = b.max_length(agent);
            match &content {
                Content::Copy(c) => prop_assert!(c.headline.chars().count() + c.body.chars().count() + c.call_to_action.chars().count() <= max),
                Content::Social(s) => {
                    prop_assert!(s.posts.len() >= 3);
                    for p in &s.posts { prop_assert!(p.text.chars().count() <= max, "{} > {max}", p.text.chars().count()); }
                }
                Content::Visual(v) => prop_assert!(v.headline.chars().count() + v.subheadline.chars().count() <= max),
            }
            for (_, text) in content.text_fields() {
                for term in &b.constraints.prohibited_terms {
                    prop_assert!(!plainly_contains(text, term), "{agent} wrote `{term}` in {text:?}");
                }
            }
            let report = audit(&content, &b);
            let errors: Vec<_> = report.findings.iter().filter(|f| f.severity == Severity::Error).collect();
            prop_assert!(errors.is_empty(), "{agent}: {errors:?}");
        }
    }

    #[test]
    fn generation_succeeds_when_no_prohibited_term_comes_from_the_templates_or_product(b in arb_brief(), n in 0u64..1000) {
        let product_words: Vec<String> = b.product.split_whitespace().map(str::to_lowercase).collect();
        prop_assume!(b.constraints.prohibited_terms.iter().all(|t| !product_words.contains(t)));
        for agent in Agent::ALL {
            prop_assert!(generate(agent, &b, run(n)).is_ok(), "{agent}");
        }
    }
}
