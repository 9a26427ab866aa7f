//! The rule-based compliance audit. Deterministic: the same content and brief always give
//! the same findings, in the same order (by field, then position, then rule).
//!
//! | rule | severity | what |
//! |---|---|---|
//! | `empty` | error | a text field is empty or blank |
//! | `placeholder` | error | lorem ipsum, `[insert …]`, `{{…}}`, TODO/TBD/XXX/FIXME, "placeholder" |
//! | `prohibited-term` | error | a prohibited term of the brief, evasions included (see `detect`) |
//! | `personal-data` | error | an e-mail address or phone number |
//! | `max-length` | error | longer than the brief's `maxLength` for the agent |
//! | `unsubstantiated-claim` | warning | superlatives and guarantees ("best", "#1", "100%", …) |
//! | `palette` | warning | a concept or SVG color outside the brand palette (neutrals exempt) |

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::detect::{self, Hit};
use crate::domain::palette;
use crate::domain::{AuditReport, Brief, Content, Finding, Severity, Span};

/// Colors a poster may always use for text and rules, whatever the brand palette.
pub const NEUTRALS: &[&str] = &["#FFFFFF", "#000000", "#111111"];

fn finding(
    rule: &str,
    severity: Severity,
    message: String,
    field: &str,
    hit: Option<Hit>,
) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        message,
        span: hit.map(|h| Span {
            field: field.into(),
            start: h.start,
            end: h.end,
        }),
    }
}

fn excerpt(text: &str, h: Hit) -> String {
    text.chars().skip(h.start).take(h.end - h.start).collect()
}

/// The findings of one text field.
fn audit_text(field: &str, text: &str, brief: &Brief, out: &mut Vec<Finding>) {
    if text.trim().is_empty() {
        out.push(finding(
            "empty",
            Severity::Error,
            format!("`{field}` is empty"),
            field,
            None,
        ));
        return;
    }
    for h in detect::find_placeholders(text) {
        let m = format!("placeholder text `{}` left in `{field}`", excerpt(text, h));
        out.push(finding("placeholder", Severity::Error, m, field, Some(h)));
    }
    let terms = &brief.constraints.prohibited_terms;
    for (term, hits) in terms.iter().zip(detect::find_each_term(text, terms)) {
        for h in hits {
            let m = format!("prohibited term `{term}` appears as `{}`", excerpt(text, h));
            out.push(finding(
                "prohibited-term",
                Severity::Error,
                m,
                field,
                Some(h),
            ));
        }
    }
    for h in detect::find_emails(text) {
        out.push(finding(
            "personal-data",
            Severity::Error,
            "an e-mail address is personal data".into(),
            field,
            Some(h),
        ));
    }
    for h in detect::find_phones(text) {
        out.push(finding(
            "personal-data",
            Severity::Error,
            "a phone number is personal data".into(),
            field,
            Some(h),
        ));
    }
    for (h, claim) in detect::find_claims(text) {
        let m = format!(
            "`{claim}` is a claim that needs substantiation; rephrase or back it with evidence"
        );
        out.push(finding(
            "unsubstantiated-claim",
            Severity::Warning,
            m,
            field,
            Some(h),
        ));
    }
}

/// Over the limit: the span covers what is beyond it.
fn length_finding(field: &str, len: usize, max: usize, what: &str) -> Option<Finding> {
    (len > max).then(|| {
        finding(
            "max-length",
            Severity::Error,
            format!("{what} is {len} characters; the brief allows {max}"),
            field,
            Some(Hit {
                start: max,
                end: len,
            }),
        )
    })
}

static HEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"#[0-9A-Fa-f]{6}\b").expect("hex regex"));

/// Audits one artifact's content against the brief.
pub fn audit(content: &Content, brief: &Brief) -> AuditReport {
    let mut findings = Vec::new();
    for (field, text) in content.text_fields() {
        audit_text(&field, text, brief, &mut findings);
    }
    let max = brief.max_length(content.agent());
    match content {
        Content::Copy(c) => {
            let len = [&c.headline, &c.body, &c.call_to_action]
                .iter()
                .map(|t| t.chars().count())
                .sum();
            findings.extend(length_finding(
                "body",
                len,
                max,
                "the copy (headline, body and call to action)",
            ));
        }
        Content::Social(s) => {
            if s.posts.is_empty() {
                findings.push(finding(
                    "empty",
                    Severity::Error,
                    "no posts".into(),
                    "posts",
                    None,
                ));
            }
            for (i, p) in s.posts.iter().enumerate() {
                let field = format!("posts[{i}].text");
                findings.extend(length_finding(
                    &field,
                    p.text.chars().count(),
                    max,
                    &format!("the {} post", p.network),
                ));
            }
        }
        Content::Visual(v) => {
            let len = v.headline.chars().count() + v.subheadline.chars().count();
            findings.extend(length_finding(
                "headline",
                len,
                max,
                "the poster text (headline and subheadline)",
            ));
            // Descriptors ("deep navy") have no exact color: say which one stands in.
            for c in brief
                .brand_guidelines
                .palette
                .iter()
                .filter_map(|c| palette::parse_color(c).ok())
            {
                if let Some(note) = c.note() {
                    findings.push(finding("palette", Severity::Warning, note, "palette", None));
                }
            }
            let brand = palette::resolve(&brief.brand_guidelines.palette);
            if !brand.is_empty() {
                let used: BTreeSet<String> = v
                    .palette
                    .iter()
                    .map(|p| p.hex.to_ascii_uppercase())
                    .chain(
                        HEX.find_iter(&v.svg)
                            .map(|m| m.as_str().to_ascii_uppercase()),
                    )
                    .collect();
                for hex in used {
                    if !brand.contains(&hex) && !NEUTRALS.contains(&hex.as_str()) {
                        findings.push(finding(
                            "palette",
                            Severity::Warning,
                            format!("{hex} is not in the brand palette ({})", brand.join(", ")),
                            "palette",
                            None,
                        ));
                    }
                }
            }
        }
    }
    // Deterministic order: field, position, rule.
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            (
                f.span.as_ref().map(|s| s.field.clone()).unwrap_or_default(),
                f.span.as_ref().map(|s| s.start).unwrap_or(0),
                f.rule.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    AuditReport::from_findings(findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Verdict;
    use crate::domain::artifact::{
        CopyContent, PaletteEntry, SocialContent, SocialPost, VisualContent,
    };
    use serde_json::json;

    fn brief(extra: serde_json::Value) -> Brief {
        let mut v = json!({"objective": "Launch", "audience": "Riders", "product": "Aurora", "tone": "bold"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        Brief::from_value(&v).unwrap()
    }

    fn copy(body: &str) -> Content {
        Content::Copy(CopyContent {
            headline: "Ride Aurora".into(),
            body: body.into(),
            call_to_action: "Book a test ride".into(),
        })
    }

    fn rules(r: &AuditReport) -> Vec<(&str, Severity)> {
        r.findings
            .iter()
            .map(|f| (f.rule.as_str(), f.severity))
            .collect()
    }

    #[test]
    fn clean_copy_passes() {
        let r = audit(
            &copy("Aurora carries you up every hill."),
            &brief(json!({})),
        );
        assert_eq!(r.verdict, Verdict::Pass, "{r:?}");
    }

    #[test]
    fn a_prohibited_term_is_an_error_with_its_span() {
        let b = brief(json!({"constraints": {"prohibitedTerms": ["free"]}}));
        let r = audit(&copy("Shipping is free."), &b);
        assert_eq!(r.verdict, Verdict::Fail);
        let f = &r.findings[0];
        assert_eq!(f.rule, "prohibited-term");
        assert_eq!(
            f.span,
            Some(Span {
                field: "body".into(),
                start: 12,
                end: 16
            })
        );
    }

    #[test]
    fn an_evaded_prohibited_term_is_still_an_error() {
        let b = brief(json!({"constraints": {"prohibitedTerms": ["free"]}}));
        for text in ["now f-r-e-e", "F.R.E.E", "f r e e", "frée"] {
            let r = audit(&copy(text), &b);
            assert_eq!(
                rules(&r),
                vec![("prohibited-term", Severity::Error)],
                "{text}"
            );
        }
        assert_eq!(audit(&copy("freedom to ride"), &b).verdict, Verdict::Pass);
    }

    #[test]
    fn personal_data_is_an_error() {
        let r = audit(
            &copy("Mail ana@example.com or call +1 555 010 2030."),
            &brief(json!({})),
        );
        assert_eq!(
            rules(&r),
            vec![
                ("personal-data", Severity::Error),
                ("personal-data", Severity::Error)
            ]
        );
    }

    #[test]
    fn placeholders_and_empty_fields_are_errors() {
        let r = audit(&copy("Lorem ipsum dolor sit amet"), &brief(json!({})));
        assert_eq!(rules(&r), vec![("placeholder", Severity::Error)]);
        let r = audit(&copy("   "), &brief(json!({})));
        assert_eq!(rules(&r), vec![("empty", Severity::Error)]);
    }

    #[test]
    fn claims_are_warnings() {
        let r = audit(&copy("The best ride, guaranteed."), &brief(json!({})));
        assert_eq!(r.verdict, Verdict::Warn);
        assert_eq!(
            rules(&r),
            vec![("unsubstantiated-claim", Severity::Warning); 2]
        );
    }

    #[test]
    fn copy_longer_than_max_length_is_an_error() {
        let b = brief(json!({"constraints": {"maxLength": {"copy": 150}}}));
        let r = audit(&copy(&"word ".repeat(40)), &b);
        assert_eq!(rules(&r), vec![("max-length", Severity::Error)]);
    }

    #[test]
    fn each_social_post_is_held_to_max_length() {
        let b = brief(json!({"constraints": {"maxLength": {"social": 60}}}));
        let posts = vec![
            SocialPost {
                network: "x".into(),
                text: "Short and sweet #Aurora".into(),
                hashtags: vec!["#Aurora".into()],
            },
            SocialPost {
                network: "linkedin".into(),
                text: "x".repeat(61),
                hashtags: vec![],
            },
        ];
        let r = audit(&Content::Social(SocialContent { posts }), &b);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].span.as_ref().unwrap().field, "posts[1].text");
    }

    fn visual(palette: &[&str], svg_extra: &str) -> Content {
        Content::Visual(VisualContent {
            headline: "Ride further".into(),
            subheadline: "Aurora e-bike".into(),
            layout: "full-bleed".into(),
            palette: palette
                .iter()
                .map(|h| PaletteEntry {
                    hex: (*h).into(),
                    role: "background".into(),
                })
                .collect(),
            imagery: "a rider at dawn".into(),
            typography: "bold sans".into(),
            svg: format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect fill=\"{}\"/>{svg_extra}</svg>",
                palette[0]
            ),
        })
    }

    #[test]
    fn a_palette_descriptor_is_recorded_as_a_warning_naming_the_color_used() {
        let b = brief(json!({"brandGuidelines": {"palette": ["deep navy", "glitter"]}}));
        let hexes: Vec<String> = palette::resolve(&b.brand_guidelines.palette);
        let refs: Vec<&str> = hexes.iter().map(String::as_str).collect();
        let r = crate::agents::audit(&visual(&refs, ""), &b);
        let notes: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.rule == "palette")
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("deep navy") && notes[0].contains("navy"));
        assert!(notes[1].contains("glitter") && notes[1].contains(palette::NEUTRAL_FALLBACK));
        assert!(r.findings.iter().all(|f| f.severity == Severity::Warning));
    }

    #[test]
    fn off_palette_colors_are_warnings_and_neutrals_are_allowed() {
        let b = brief(json!({"brandGuidelines": {"palette": ["teal"]}}));
        assert_eq!(
            audit(&visual(&["#008080", "#FFFFFF"], ""), &b).verdict,
            Verdict::Pass
        );
        let r = audit(&visual(&["#008080"], "<circle fill=\"#FF0000\"/>"), &b);
        assert_eq!(rules(&r), vec![("palette", Severity::Warning)]);
        // Without a brand palette there is nothing to conform to.
        assert_eq!(
            audit(&visual(&["#FF0000"], ""), &brief(json!({}))).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn the_poster_text_is_held_to_max_length() {
        let b = brief(json!({"constraints": {"maxLength": {"visual": 40}}}));
        let Content::Visual(mut v) = visual(&["#008080"], "") else {
            unreachable!()
        };
        v.subheadline = "a".repeat(40);
        let r = audit(&Content::Visual(v), &b);
        assert_eq!(rules(&r), vec![("max-length", Severity::Error)]);
    }

    #[test]
    fn the_same_input_gives_the_same_findings() {
        let b = brief(json!({"constraints": {"prohibitedTerms": ["free", "cheap"]}}));
        let c = copy("free and cheap, the best, call 555 123 4567");
        assert_eq!(audit(&c, &b), audit(&c, &b));
    }
}
