//! Brand kits: named, versioned brand guidelines kept in a library (`/brands`) so briefs can
//! name one (`brandId`) instead of repeating tone adjectives, palette, prohibited terms and
//! default length limits. Validated like briefs (the same limits, the same messages).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::brief::{
    BrandGuidelines, Brief, BriefError, Constraints, MAX_BODY_BYTES, MAX_PALETTE,
    MAX_PROHIBITED_TERMS, MAX_TONE_ADJECTIVES, TONE_MAX, Violation,
};

/// Longest brand kit id.
pub const BRAND_ID_MAX: usize = 64;

/// A stored brand kit. `version` starts at 1 and grows by one with every replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrandKit {
    pub brand_id: String,
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub brand_guidelines: BrandGuidelines,
    /// Defaults for briefs that name the kit: length limits the brief does not set, and
    /// prohibited terms added to the brief's own.
    #[serde(default)]
    pub constraints: Constraints,
    #[serde(with = "crate::domain::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::domain::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a client sends to create or replace a kit (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandInput {
    /// Required on create (`POST /brands`); on replace the path names the kit.
    pub brand_id: Option<String>,
    pub name: String,
    pub brand_guidelines: BrandGuidelines,
    pub constraints: Constraints,
    /// On replace: the version the client read; a different current version is a conflict.
    pub expected_version: Option<u32>,
}

/// Checks a brand kit id: 1–64 of `a-z`, `0-9`, `-`, starting with a letter or digit.
pub fn check_id(id: &str) -> Result<(), String> {
    let ok = (1..=BRAND_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a brand kit id; allowed: 1–{BRAND_ID_MAX} of a-z, 0-9 and '-', not starting with '-' (e.g. \"acme-outdoor\")",
            id.chars().take(80).collect::<String>()
        ))
    }
}

impl BrandInput {
    /// Parses a kit from client bytes: `{brandId?, name?, brandGuidelines?, constraints?,
    /// version?}`, every violation collected (field names as in a brief).
    pub fn parse(body: &[u8]) -> Result<BrandInput, BriefError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(BriefError::TooLarge {
                size: body.len(),
                limit: MAX_BODY_BYTES,
                guidance: format!("A brand kit is at most {} KiB.", MAX_BODY_BYTES / 1024),
            });
        }
        let v: Value =
            serde_json::from_slice(body).map_err(|e| BriefError::Malformed(e.to_string()))?;
        let mut errors = Vec::new();
        let mut push = |field: &str, message: String| {
            errors.push(Violation {
                field: field.to_string(),
                message,
            })
        };
        let Some(obj) = v.as_object() else {
            push("$", "a brand kit must be a JSON object".into());
            return Err(BriefError::Invalid(errors));
        };
        let allowed = [
            "brandId",
            "name",
            "brandGuidelines",
            "constraints",
            "version",
        ];
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                push(
                    k,
                    format!("unknown field `{k}`; allowed here: {}", allowed.join(", ")),
                );
            }
        }
        let brand_id = match obj.get("brandId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match check_id(s) {
                Ok(()) => Some(s.clone()),
                Err(m) => {
                    push("brandId", m);
                    None
                }
            },
            Some(_) => {
                push("brandId", "must be a string".into());
                None
            }
        };
        let name = match obj.get("name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => {
                let t = super::brief::normalize_text(s);
                if t.chars().count() > TONE_MAX || s.chars().any(super::brief::is_forbidden_char) {
                    push(
                        "name",
                        format!("allowed: up to {TONE_MAX} printable characters"),
                    );
                }
                t
            }
            Some(_) => {
                push("name", "must be a string".into());
                String::new()
            }
        };
        let expected_version = match obj.get("version") {
            None | Some(Value::Null) => None,
            Some(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    push(
                        "version",
                        "must be the positive integer version you read (GET /brands/{brandId})"
                            .into(),
                    );
                    None
                }
            },
        };
        // The guidelines and constraints are validated by the brief's own rules: a
        // placeholder brief carries them through the same validator.
        let probe = serde_json::json!({
            "objective": "-", "audience": "-", "product": "-", "tone": "-",
            "constraints": obj.get("constraints").cloned().unwrap_or(Value::Null),
            "brandGuidelines": obj.get("brandGuidelines").cloned().unwrap_or(Value::Null),
        });
        let parsed = Brief::from_value(&probe);
        let (brand_guidelines, constraints) = match parsed {
            Ok(b) => (b.brand_guidelines, b.constraints),
            Err(e) => {
                errors.extend(e.violations().iter().cloned());
                Default::default()
            }
        };
        if !errors.is_empty() {
            return Err(BriefError::Invalid(errors));
        }
        Ok(BrandInput {
            brand_id,
            name,
            brand_guidelines,
            constraints,
            expected_version,
        })
    }
}

impl BrandKit {
    /// The brief with this kit applied: the kit's tone adjectives, palette and prohibited
    /// terms come first and the brief's own are added (duplicates once); length limits the
    /// brief does not set take the kit's. Records the kit's id and version on the brief.
    /// Fails (with the field) when the merged lists exceed a brief's limits.
    pub fn apply(&self, mut brief: Brief) -> Result<Brief, Vec<Violation>> {
        let mut errors = Vec::new();
        let merge = |kit: &[String], own: &[String], eq: fn(&str, &str) -> bool| {
            let mut out: Vec<String> = kit.to_vec();
            for x in own {
                if !out.iter().any(|y| eq(x, y)) {
                    out.push(x.clone());
                }
            }
            out
        };
        let g = &mut brief.brand_guidelines;
        g.tone_adjectives = merge(
            &self.brand_guidelines.tone_adjectives,
            &g.tone_adjectives,
            |a, b| a.eq_ignore_ascii_case(b),
        );
        g.palette = merge(&self.brand_guidelines.palette, &g.palette, |a, b| {
            a.eq_ignore_ascii_case(b)
        });
        let c = &mut brief.constraints;
        c.prohibited_terms = merge(
            &self.constraints.prohibited_terms,
            &c.prohibited_terms,
            |a, b| a == b,
        );
        let ml = &mut c.max_length;
        ml.copy = ml.copy.or(self.constraints.max_length.copy);
        ml.social = ml.social.or(self.constraints.max_length.social);
        ml.visual = ml.visual.or(self.constraints.max_length.visual);
        let limits = [
            (
                "brandGuidelines.toneAdjectives",
                brief.brand_guidelines.tone_adjectives.len(),
                MAX_TONE_ADJECTIVES,
            ),
            (
                "brandGuidelines.palette",
                brief.brand_guidelines.palette.len(),
                MAX_PALETTE,
            ),
            (
                "constraints.prohibitedTerms",
                brief.constraints.prohibited_terms.len(),
                MAX_PROHIBITED_TERMS,
            ),
        ];
        for (field, n, max) in limits {
            if n > max {
                errors.push(Violation {
                    field: field.to_string(),
                    message: format!(
                        "has {n} entries with brand kit `{}` v{} added; allowed: at most {max}",
                        self.brand_id, self.version
                    ),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        brief.brand_id = Some(self.brand_id.clone());
        brief.brand_version = Some(self.version);
        Ok(brief)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kit(body: Value) -> BrandKit {
        let input = BrandInput::parse(body.to_string().as_bytes()).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        BrandKit {
            brand_id: input.brand_id.unwrap(),
            name: input.name,
            version: 2,
            brand_guidelines: input.brand_guidelines,
            constraints: input.constraints,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_kit_is_validated_like_a_brief() {
        let e = BrandInput::parse(
            br##"{"brandId":"Bad Id","brandGuidelines":{"palette":["#12"]},"constraints":{"maxLength":{"social":5}},"colour":1}"##,
        )
        .unwrap_err();
        let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"brandId"), "{fields:?}");
        assert!(fields.contains(&"colour"), "{fields:?}");
        assert!(fields.contains(&"brandGuidelines.palette[0]"), "{fields:?}");
        assert!(
            fields.contains(&"constraints.maxLength.social"),
            "{fields:?}"
        );
    }

    #[test]
    fn applying_a_kit_merges_lists_keeps_the_briefs_limits_and_records_the_version() {
        let k = kit(serde_json::json!({
            "brandId": "acme",
            "brandGuidelines": { "toneAdjectives": ["bold", "warm"], "palette": ["#112233"] },
            "constraints": { "prohibitedTerms": ["cheap"], "maxLength": { "copy": 900, "social": 200 } }
        }));
        let brief = Brief::from_value(&serde_json::json!({
            "objective": "o", "audience": "a", "product": "p", "tone": "t",
            "brandId": "acme",
            "brandGuidelines": { "toneAdjectives": ["Warm", "calm"], "palette": ["forest green"] },
            "constraints": { "prohibitedTerms": ["free", "cheap"], "maxLength": { "social": 100 } }
        }))
        .unwrap();
        let b = k.apply(brief).unwrap();
        assert_eq!(b.brand_guidelines.tone_adjectives, ["bold", "warm", "calm"]);
        assert_eq!(b.brand_guidelines.palette, ["#112233", "forest green"]);
        assert_eq!(b.constraints.prohibited_terms, ["cheap", "free"]);
        assert_eq!(b.constraints.max_length.copy, Some(900));
        assert_eq!(b.constraints.max_length.social, Some(100));
        assert_eq!(b.constraints.max_length.visual, None);
        assert_eq!(
            (b.brand_id.as_deref(), b.brand_version),
            (Some("acme"), Some(2))
        );
    }

    #[test]
    fn a_merge_over_a_briefs_limit_names_the_field() {
        let palette: Vec<String> = (0..8).map(|i| format!("#0000{i:02}")).collect();
        let k =
            kit(serde_json::json!({ "brandId": "big", "brandGuidelines": { "palette": palette } }));
        let own: Vec<String> = (0..8).map(|i| format!("#FF00{i:02}")).collect();
        let brief = Brief::from_value(&serde_json::json!({
            "objective": "o", "audience": "a", "product": "p", "tone": "t",
            "brandGuidelines": { "palette": own }
        }))
        .unwrap();
        let e = k.apply(brief).unwrap_err();
        assert_eq!(e[0].field, "brandGuidelines.palette");
        assert!(e[0].message.contains("at most 12"), "{}", e[0].message);
    }

    #[test]
    fn ids_are_slugs() {
        assert!(check_id("acme-outdoor-2").is_ok());
        for bad in ["", "-x", "Acme", "a b", "é", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
