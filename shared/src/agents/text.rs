//! Text tools of the built-in generators: a stable seed, sanitizing with the audit's own
//! detectors, and fitting text to a length.

use std::hash::Hasher;

use super::detect;
use crate::domain::RunId;

/// A seed stable across builds and platforms (FNV-1a; std's hasher is not), from the run
/// id and the brief's JSON text.
pub fn seed(run_id: RunId, brief_json: &str, salt: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(run_id.encode(&mut [0; ulid::ULID_LEN]).as_bytes());
    h.write(brief_json.as_bytes());
    h.write(salt.as_bytes());
    h.finish()
}

/// Picks one of `options` with `seed`.
pub fn pick<T>(options: &[T], seed: u64, slot: u64) -> &T {
    &options[pick_index(options.len(), seed, slot)]
}

/// The index [`pick`] chooses among `n` options.
pub fn pick_index(n: usize, seed: u64, slot: u64) -> usize {
    let mixed =
        seed.rotate_left((slot * 13 % 64) as u32) ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed % n as u64) as usize
}

/// [`pick`] among texts written only when chosen: `pick_one!(seed, slot; a, b, c)` is
/// `pick(&[a, b, c], seed, slot)` (each option a `String` or `&str`), but only the one
/// picked is formatted — the others were formatted and thrown away (most of a built-in
/// generator's `format!`s).
macro_rules! pick_one {
    ($seed:expr, $slot:expr; $($option:expr),+ $(,)?) => {{
        let options: &[&dyn Fn() -> String] = &[$(&|| $option.into()),+];
        options[$crate::agents::text::pick_index(options.len(), $seed, $slot)]()
    }};
}
pub(crate) use pick_one;

/// Removes every span the audit would call an error (prohibited terms, personal data,
/// placeholders) and tidies what is left, until nothing is found.
pub fn sanitize(text: &str, prohibited: &[String]) -> String {
    let mut t = tidy(text);
    for _ in 0..16 {
        let hits = detect::error_hits(&t, prohibited);
        if hits.is_empty() {
            return t;
        }
        let chars: Vec<char> = t.chars().collect();
        let mut keep = vec![true; chars.len()];
        for h in hits {
            for k in keep.iter_mut().take(h.end.min(chars.len())).skip(h.start) {
                *k = false;
            }
        }
        let cut: String = chars
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(c, _)| *c)
            .collect();
        t = tidy(&cut);
    }
    // Removal keeps finding more (adversarial input): give up on the text.
    String::new()
}

/// Collapses whitespace and the punctuation debris removal leaves behind.
pub fn tidy(text: &str) -> String {
    // Most texts (every generated one) are tidy already: one pass says so, instead of a
    // split, a join and eight scans (a fifth of the built-in generator's instructions).
    if is_tidy(text) {
        return text.to_string();
    }
    tidy_slowly(text)
}

/// Characters [`tidy`] trims from both ends.
fn trimmed(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '—')
}

/// Whether [`tidy`] would return `text` unchanged: single ASCII spaces between words,
/// none before `,.!?:`, no `,,` or `()`, nothing trimmable at either end.
fn is_tidy(text: &str) -> bool {
    let (Some(first), Some(last)) = (text.chars().next(), text.chars().next_back()) else {
        return true;
    };
    if trimmed(first) || trimmed(last) {
        return false;
    }
    // Every pattern is two ASCII chars, or one whitespace char other than a space. A pair
    // of bytes next to each other is a pair of chars when both are ASCII, and a byte of a
    // char outside ASCII is in no pattern; so the pairs are looked at byte by byte, all
    // of them, in a loop without an early exit the compiler vectorizes (as
    // `detect::has_camel_step`), and only the chars outside ASCII one by one.
    let b = text.as_bytes();
    let is = |c: u8, x: u8| u8::from(c == x);
    let debris = b.iter().zip(&b[1..]).fold(0u8, |any, (&x, &y)| {
        let stray = is(y, b' ') | is(y, b',') | is(y, b'.') | is(y, b'!') | is(y, b'?');
        any | (is(x, b' ') & (stray | is(y, b':')))
            | (is(x, b',') & is(y, b','))
            | (is(x, b'(') & is(y, b')'))
            // \t \n \v \f \r: ASCII whitespace other than the space.
            | u8::from(y.wrapping_sub(0x09) < 5)
    });
    debris == 0
        && (text.is_ascii()
            || !text
                .chars()
                .skip(1)
                .any(|c| !c.is_ascii() && c.is_whitespace()))
}

/// [`is_tidy`] char by char: what it must answer.
#[cfg(test)]
fn is_tidy_char_by_char(text: &str) -> bool {
    let (Some(first), Some(last)) = (text.chars().next(), text.chars().next_back()) else {
        return true;
    };
    if trimmed(first) || trimmed(last) {
        return false;
    }
    let mut prev = first;
    for c in text.chars().skip(1) {
        let debris = match (prev, c) {
            (' ', ' ' | ',' | '.' | '!' | '?' | ':') | (',', ',') | ('(', ')') => true,
            _ => c.is_whitespace() && c != ' ',
        };
        if debris {
            return false;
        }
        prev = c;
    }
    true
}

fn tidy_slowly(text: &str) -> String {
    let mut s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for (from, to) in [
        (" ,", ","),
        (" .", "."),
        (" !", "!"),
        (" ?", "?"),
        (" :", ":"),
        (",,", ","),
        ("()", ""),
        ("  ", " "),
    ] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s.trim_matches(trimmed).to_string()
}

pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `text` to at most `max` characters at a word boundary, ending with "…" when cut.
pub fn fit(text: &str, max: usize) -> String {
    if char_len(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1;
    let mut out = String::new();
    for word in text.split(' ') {
        let extra = if out.is_empty() { 0 } else { 1 };
        if char_len(&out) + extra + char_len(word) > budget {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = text.chars().take(budget).collect();
    }
    let out = out
        .trim_end_matches([',', ';', ':', '-', '—', ' '])
        .to_string();
    format!("{out}…")
}

/// First letter upper-cased.
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// First letter lower-cased unless the first word looks like a name or acronym.
pub fn decapitalize(s: &str) -> String {
    let first = s.split(' ').next().unwrap_or_default();
    let looks_proper = first.chars().skip(1).any(char::is_uppercase);
    if looks_proper {
        return s.to_string();
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Removes a trailing sentence punctuation mark.
pub fn bare(s: &str) -> String {
    s.trim_end_matches(['.', '!', '?', ';', ':']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_called_tidy_is_what_tidying_it_returns() {
        // Every string of up to five characters over the characters tidying looks at.
        let alphabet = [
            " ", "\t", "\u{a0}", "a", ",", ".", "!", ":", ";", "(", ")", "-", "—", "\u{b}",
        ];
        let mut tidy_ones = 0;
        for t in &crate::agents::every_string(&alphabet, 5) {
            assert_eq!(is_tidy(t), is_tidy_char_by_char(t), "{t:?}");
            let slow = tidy_slowly(t);
            if is_tidy(t) {
                tidy_ones += 1;
                assert_eq!(slow, *t, "{t:?} was called tidy");
            }
            assert_eq!(tidy(t), slow, "{t:?}");
        }
        // The fast path is taken, and not only for single words.
        assert!(tidy_ones > 10_000, "{tidy_ones}");
        assert!(is_tidy("Fresh bread, daily (since 1990): order now!"));
        assert!(!is_tidy("Fresh bread , daily"));
    }

    #[test]
    fn sanitizing_removes_what_the_audit_would_flag_and_tidies() {
        let p = vec!["free".to_string()];
        assert_eq!(sanitize("Get it free, now!", &p), "Get it, now!");
        assert_eq!(sanitize("Mail ana@example.com today", &p), "Mail today");
        assert_eq!(sanitize("free", &p), "");
    }

    #[test]
    fn fitting_cuts_at_a_word_boundary_within_the_limit() {
        let t = "Ride further with Aurora every single day";
        let f = fit(t, 20);
        assert!(char_len(&f) <= 20, "{f}");
        assert_eq!(f, "Ride further with…");
        assert_eq!(fit(t, 100), t);
    }
}
