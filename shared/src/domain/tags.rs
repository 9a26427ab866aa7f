//! Tag normalization: lowercase, kebab-case, deduplicated, sorted.

use unicode_normalization::UnicodeNormalization;

/// Normalizes one tag; `None` when nothing taggable is left.
pub fn normalize_tag(raw: &str) -> Option<String> {
    // ASCII text is its own NFKC form and lowercases byte by byte: the common case skips
    // the Unicode tables (they were 3% of a run's instructions).
    if raw.is_ascii() {
        kebab(raw.bytes().map(|b| char::from(b.to_ascii_lowercase())))
    } else {
        kebab(raw.nfkc().flat_map(char::to_lowercase))
    }
}

/// Folded chars → kebab-case: runs of non-alphanumerics become one dash between words.
fn kebab(folded: impl Iterator<Item = char>) -> Option<String> {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in folded {
        if c.is_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Normalizes, deduplicates and sorts a list of tags.
pub fn normalize_tags<I, S>(raw: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut tags: Vec<String> = raw
        .into_iter()
        .filter_map(|t| normalize_tag(t.as_ref()))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_become_lowercase_kebab_case() {
        assert_eq!(
            normalize_tag("  Spring Launch_2025!! ").as_deref(),
            Some("spring-launch-2025")
        );
        assert_eq!(normalize_tag("#EBike").as_deref(), Some("ebike"));
        assert_eq!(normalize_tag("--"), None);
    }

    #[test]
    fn tag_lists_are_deduplicated_and_sorted() {
        assert_eq!(normalize_tags(["B", "a", "b ", "A"]), vec!["a", "b"]);
    }

    /// The Unicode path alone, to hold the ASCII fast path to.
    fn by_unicode_tables(raw: &str) -> Option<String> {
        kebab(raw.nfkc().flat_map(char::to_lowercase))
    }

    proptest! {
        #[test]
        fn ascii_tags_normalize_as_the_unicode_tables_say(raw in "[\\x00-\\x7f]{0,40}") {
            prop_assert_eq!(normalize_tag(&raw), by_unicode_tables(&raw));
        }

        #[test]
        fn tag_normalization_is_idempotent(raw in proptest::collection::vec(".{0,30}", 0..8)) {
            let once = normalize_tags(&raw);
            let twice = normalize_tags(&once);
            prop_assert_eq!(&once, &twice);
            for t in &once {
                prop_assert_eq!(normalize_tag(t), Some(t.clone()));
            }
        }
    }
}
