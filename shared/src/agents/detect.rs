//! The detectors the audit reports with and the generators sanitize with — one
//! implementation, so a generated artifact never trips the audit it will face.
//!
//! Prohibited terms match case-insensitively on word boundaries, also through simple
//! evasions: accents (`frée`), and separators inserted between letters (`f-r-e-e`,
//! `F.R.E.E`, `f r e e`, `f_r_e_e`, `f*r*e*e`; at most two separator characters between two
//! letters), and inside CamelCase hashtags (`#FreeShipping`).

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// A finding's position: char offsets (Unicode scalar values) in the checked text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub start: usize,
    pub end: usize,
}

/// Characters an evasion may insert between the letters of a term.
fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | '_' | '*' | '·' | '\'' | '’' | '/' | '+') || c.is_whitespace()
}

/// The folded text: lowercase, accents stripped, each char mapped to the index of the
/// original char it came from. A lower→upper case change (CamelCase) gets a virtual
/// space, so hashtags' words are words.
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Skeleton<'a> {
    /// ASCII text without CamelCase: each byte, lowercased, is a folded char and its own
    /// origin (what `folded` gives, without its case tables, decomposition and copies:
    /// tested).
    Ascii(&'a [u8]),
    /// ASCII text with CamelCase: its bytes with a space before each upper-case letter
    /// that follows a lower-case one (`spaces`: where those are), each other byte its
    /// char's own (what `folded` gives, without a char and an origin kept per byte: tested).
    Spaced { bytes: Vec<u8>, spaces: Vec<usize> },
    Folded {
        chars: Vec<char>,
        origin: Vec<usize>,
    },
}

impl<'a> Skeleton<'a> {
    fn new(text: &'a str) -> Self {
        let b = text.as_bytes();
        if text.is_ascii() {
            if !has_camel_step(b) {
                return Skeleton::Ascii(b);
            }
            return Skeleton::spaced(b);
        }
        Skeleton::folded(text)
    }

    /// [`Skeleton::Spaced`] of ASCII text `b` (social posts, for their hashtags: folded a
    /// char at a time, they were most of the folding's work).
    fn spaced(b: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(b.len() + 8);
        let mut spaces = Vec::new();
        let mut from = 0;
        for k in 1..b.len() {
            if b[k - 1].is_ascii_lowercase() && b[k].is_ascii_uppercase() {
                bytes.extend_from_slice(&b[from..k]);
                spaces.push(bytes.len());
                bytes.push(b' ');
                from = k;
            }
        }
        bytes.extend_from_slice(&b[from..]);
        Skeleton::Spaced { bytes, spaces }
    }

    fn folded(text: &str) -> Self {
        let mut chars = Vec::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len());
        let mut prev_lower = false;
        // `i`: the char index of `rest`'s first char.
        let (mut i, mut rest) = (0, text);
        while !rest.is_empty() {
            // A run of ASCII, whose bytes are its chars.
            let n = rest
                .bytes()
                .position(|b| !b.is_ascii())
                .unwrap_or(rest.len());
            let run = &rest.as_bytes()[..n];
            let camel = (prev_lower && run.first().is_some_and(u8::is_ascii_uppercase))
                || has_camel_step(run);
            if camel {
                // Copied in stretches between the steps, each step a virtual space before
                // its upper-case letter.
                let mut from = 0;
                for k in 0..n {
                    let before = if k == 0 {
                        prev_lower
                    } else {
                        run[k - 1].is_ascii_lowercase()
                    };
                    if before && run[k].is_ascii_uppercase() {
                        chars.extend(
                            run[from..k]
                                .iter()
                                .map(|&b| char::from(b.to_ascii_lowercase())),
                        );
                        origin.extend(i + from..i + k);
                        chars.push(' ');
                        origin.push(i + k);
                        from = k;
                    }
                }
                chars.extend(
                    run[from..]
                        .iter()
                        .map(|&b| char::from(b.to_ascii_lowercase())),
                );
                origin.extend(i + from..i + n);
                prev_lower = run.last().is_some_and(u8::is_ascii_lowercase);
            } else if let Some(last) = run.last() {
                chars.extend(run.iter().map(|&b| char::from(b.to_ascii_lowercase())));
                origin.extend(i..i + n);
                prev_lower = last.is_ascii_lowercase();
            }
            i += n;
            rest = &rest[n..];
            // Then one char outside ASCII, decomposed without its accents.
            if let Some(c) = rest.chars().next() {
                if c.is_uppercase() && prev_lower {
                    chars.push(' ');
                    origin.push(i);
                }
                prev_lower = c.is_lowercase();
                for d in std::iter::once(c).nfkd().filter(|d| !is_combining_mark(*d)) {
                    for l in d.to_lowercase() {
                        chars.push(l);
                        origin.push(i);
                    }
                }
                i += 1;
                rest = &rest[c.len_utf8()..];
            }
        }
        Skeleton::Folded { chars, origin }
    }

    /// [`Skeleton::folded`] one char at a time: what it must equal.
    #[cfg(test)]
    fn folded_char_by_char(text: &str) -> Self {
        let mut chars = Vec::with_capacity(text.len());
        let mut origin = Vec::with_capacity(text.len());
        let mut prev_lower = false;
        for (i, c) in text.chars().enumerate() {
            if c.is_ascii() {
                if c.is_ascii_uppercase() && prev_lower {
                    chars.push(' ');
                    origin.push(i);
                }
                prev_lower = c.is_ascii_lowercase();
                chars.push(c.to_ascii_lowercase());
                origin.push(i);
                continue;
            }
            if c.is_uppercase() && prev_lower {
                chars.push(' ');
                origin.push(i);
            }
            prev_lower = c.is_lowercase();
            for d in std::iter::once(c).nfkd().filter(|d| !is_combining_mark(*d)) {
                for l in d.to_lowercase() {
                    chars.push(l);
                    origin.push(i);
                }
            }
        }
        Skeleton::Folded { chars, origin }
    }
}

/// Whether a lower-case ASCII letter is followed by an upper-case one anywhere in `b`.
///
/// Every pair is looked at, without stopping at the first: a loop without an early exit
/// over two offset slices is one the compiler turns into vector instructions, and most
/// texts have no such pair, so they are read in full either way. (Callgrind, the bench's
/// usual command: a text's folding went from 2.0k to 1.3k instructions on average.)
fn has_camel_step(b: &[u8]) -> bool {
    let Some(next) = b.get(1..) else {
        return false;
    };
    let lower = |c: u8| u8::from(c.wrapping_sub(b'a') < 26);
    let upper = |c: u8| u8::from(c.wrapping_sub(b'A') < 26);
    b.iter()
        .zip(next)
        .fold(0u8, |any, (&x, &y)| any | (lower(x) & upper(y)))
        != 0
}

/// The letters and digits a term consists of, folded like the text.
fn term_letters(term: &str) -> Vec<char> {
    if term.is_ascii() {
        return term
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
    }
    term.nfkd()
        .filter(|d| !is_combining_mark(*d))
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Every occurrence of `term` in `text`, evasions included.
pub fn find_term(text: &str, term: &str) -> Vec<Hit> {
    find_in(&Skeleton::new(text), &term_letters(term))
}

/// The occurrences of each of `terms` in `text`, term by term (the text is folded once).
pub fn find_each_term(text: &str, terms: &[String]) -> Vec<Vec<Hit>> {
    if terms.is_empty() {
        return Vec::new();
    }
    let sk = Skeleton::new(text);
    terms
        .iter()
        .map(|t| find_in(&sk, &term_letters(t)))
        .collect()
}

/// Every occurrence of any of `terms` in `text` (the text is folded once).
pub fn find_terms(text: &str, terms: &[String]) -> Vec<Hit> {
    find_each_term(text, terms).into_iter().flatten().collect()
}

fn find_in(sk: &Skeleton, letters: &[char]) -> Vec<Hit> {
    let Some((&first, rest)) = letters.split_first() else {
        return Vec::new();
    };
    // Each kind of skeleton gets its own copy of the scan, its char reads inlined, and
    // jumps from one place holding the term's first letter to the next.
    let ascii = |b: &[u8], origin: &dyn Fn(usize) -> usize| {
        let next = |from: usize| {
            let l = u8::try_from(first).ok().filter(u8::is_ascii)?;
            memchr::memchr2(l, l.to_ascii_uppercase(), &b[from..]).map(|i| from + i)
        };
        let at = |k: usize| char::from(b[k].to_ascii_lowercase());
        scan(b.len(), at, origin, next, rest)
    };
    match sk {
        Skeleton::Ascii(b) => ascii(b, &|k| k),
        // A byte's char is its index less the spaces before it (a space's, the letter's
        // after it); only a hit asks.
        Skeleton::Spaced { bytes, spaces } => {
            ascii(bytes, &|k| k - spaces.partition_point(|&p| p < k))
        }
        Skeleton::Folded { chars, origin } => {
            let next = |from: usize| {
                chars[from..]
                    .iter()
                    .position(|&c| c == first)
                    .map(|i| from + i)
            };
            scan(chars.len(), |k| chars[k], |k| origin[k], next, rest)
        }
    }
}

/// The hits of a term in the `n` folded chars `at` gives, mapped back by `origin`:
/// `next(k)` is the first place from `k` on holding its first letter, `rest` its others.
fn scan(
    n: usize,
    at: impl Fn(usize) -> char,
    origin: impl Fn(usize) -> usize,
    next: impl Fn(usize) -> Option<usize>,
    rest: &[char],
) -> Vec<Hit> {
    let is_word = |k: usize| k < n && at(k).is_alphanumeric();
    let mut hits = Vec::new();
    let mut from = 0;
    while from < n {
        let Some(s) = next(from) else { break };
        if s == 0 || !is_word(s - 1) {
            let mut p = s + 1;
            let mut ok = true;
            for &l in rest {
                let mut gaps = 0;
                while p < n && is_separator(at(p)) && gaps < 2 {
                    p += 1;
                    gaps += 1;
                }
                if p < n && at(p) == l {
                    p += 1;
                } else {
                    ok = false;
                    break;
                }
            }
            if ok && !is_word(p) {
                hits.push(Hit {
                    start: origin(s),
                    end: origin(p - 1) + 1,
                });
                from = p;
                continue;
            }
        }
        from = s + 1;
    }
    hits
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}")
        .expect("email regex")
});
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s().\-]{5,}\d").expect("phone regex"));
static ISO_DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("date regex"));

fn char_hit(text: &str, byte_start: usize, byte_end: usize) -> Hit {
    Hit {
        start: text[..byte_start].chars().count(),
        end: text[..byte_end].chars().count(),
    }
}

/// E-mail addresses.
pub fn find_emails(text: &str) -> Vec<Hit> {
    // An address has an `@`: most texts are ruled out without running the regex.
    if !text.contains('@') {
        return Vec::new();
    }
    EMAIL
        .find_iter(text)
        .map(|m| char_hit(text, m.start(), m.end()))
        .collect()
}

/// Phone numbers: 7 to 15 digits with the usual separators; ISO dates are not phones.
pub fn find_phones(text: &str) -> Vec<Hit> {
    // A phone number has at least 7 digits: texts with fewer need no regex.
    if text.bytes().filter(u8::is_ascii_digit).count() < 7 {
        return Vec::new();
    }
    PHONE
        .find_iter(text)
        .filter(|m| {
            let digits = m.as_str().chars().filter(char::is_ascii_digit).count();
            (7..=15).contains(&digits) && !ISO_DATE.is_match(m.as_str().trim())
        })
        .map(|m| char_hit(text, m.start(), m.end()))
        .collect()
}

static PLACEHOLDER_CI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)lorem\s+ipsum|\[\s*insert[^\]]*\]|\{\{[^}]*\}\}|\bplaceholder\b")
        .expect("placeholder regex")
});
/// Upper-case markers only: `todo` is a word in other languages.
static PLACEHOLDER_CS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bTODO\b|\bTBD\b|\bXXX+\b|\bFIXME\b").expect("marker regex"));

/// Whether `text` holds what every match of the placeholder patterns needs: a bracket or
/// brace, `lorem` or `placeholder` in any case (no char outside ASCII folds to one of
/// their letters: tested), or an upper-case marker.
fn may_hold_placeholder(text: &str) -> bool {
    let b = text.as_bytes();
    let at = |i: usize, word: &[u8]| {
        b.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    let one = |i: usize| match b[i] {
        b'[' | b'{' => true,
        b'l' | b'L' => at(i, b"lorem"),
        b'p' | b'P' => at(i, b"placeholder"),
        b'T' => b[i..].starts_with(b"TODO") || b[i..].starts_with(b"TBD"),
        b'X' => b[i..].starts_with(b"XXX"),
        b'F' => b[i..].starts_with(b"FIXME"),
        _ => false,
    };
    // Every place five bytes from the end or more, at once: a loop over five offset slices
    // without an early exit, which the compiler turns into vector instructions (as
    // `has_camel_step`), looking for `[`, `{`, `lorem` or `place` in any case, `TOD`,
    // `TBD`, `XXX` or `FIX` — what each pattern starts with. Only if one is there is each
    // byte looked at as before; the last four always are.
    let tail = b.len().saturating_sub(4);
    let at_most = |s: usize| b.get(s..).unwrap_or_default();
    let low = |c: u8| c | 0x20;
    let any = b
        .iter()
        .zip(at_most(1))
        .zip(at_most(2))
        .zip(at_most(3))
        .zip(at_most(4))
        .fold(0u8, |any, ((((&p, &q), &r), &s), &t)| {
            let is = |c: u8, x: u8| u8::from(c == x);
            let (lp, lq, lr, ls, lt) = (low(p), low(q), low(r), low(s), low(t));
            any | is(p, b'[')
                | is(p, b'{')
                | (is(lp, b'l') & is(lq, b'o') & is(lr, b'r') & is(ls, b'e') & is(lt, b'm'))
                | (is(lp, b'p') & is(lq, b'l') & is(lr, b'a') & is(ls, b'c') & is(lt, b'e'))
                | (is(p, b'T') & (is(q, b'O') & is(r, b'D') | is(q, b'B') & is(r, b'D')))
                | (is(p, b'X') & is(q, b'X') & is(r, b'X'))
                | (is(p, b'F') & is(q, b'I') & is(r, b'X'))
        });
    (any != 0 && (0..tail).any(one)) || (tail..b.len()).any(one)
}

/// Placeholder text left in copy.
pub fn find_placeholders(text: &str) -> Vec<Hit> {
    // Most texts hold none: ruled out without running the two regexes.
    if !may_hold_placeholder(text) {
        return Vec::new();
    }
    placeholders_by_regex(text)
}

fn placeholders_by_regex(text: &str) -> Vec<Hit> {
    let mut hits: Vec<Hit> = PLACEHOLDER_CI
        .find_iter(text)
        .chain(PLACEHOLDER_CS.find_iter(text))
        .map(|m| char_hit(text, m.start(), m.end()))
        .collect();
    hits.sort_by_key(|h| h.start);
    hits
}

/// Claims that need substantiation: superlatives and guarantees.
pub const CLAIMS: &[&str] = &[
    "best",
    "#1",
    "number one",
    "no. 1",
    "guaranteed",
    "guarantee",
    "100%",
    "risk-free",
    "risk free",
    "never fails",
    "unbeatable",
    "world's first",
    "cheapest",
    "fastest",
];

/// The claims as one case-insensitive alternation, with word boundaries where a claim
/// starts or ends with a letter or digit (`bounded`), or without any.
fn claims_regex(bounded: bool) -> Regex {
    let alts: Vec<String> = CLAIMS
        .iter()
        .map(|c| {
            let e = regex::escape(c);
            let edge = |alnum: bool| if bounded && alnum { r"\b" } else { "" };
            let start = edge(c.starts_with(|ch: char| ch.is_alphanumeric()));
            let end = edge(c.ends_with(|ch: char| ch.is_alphanumeric()));
            format!("{start}{e}{end}")
        })
        .collect();
    Regex::new(&format!("(?i){}", alts.join("|"))).expect("claims regex")
}

static CLAIM_RE: LazyLock<Regex> = LazyLock::new(|| claims_regex(true));

/// The claims without their word boundaries: a match of [`CLAIM_RE`] is one of this at
/// the same place, so a text this finds nothing in has no claim. It is the cheap look:
/// the regex crate's fast automata handle a Unicode word boundary only in ASCII text, and
/// generated text has an emoji or an ellipsis (callgrind, the bench's usual command: 6.8k
/// → 4.1k instructions per text field audited).
static CLAIM_CANDIDATE: LazyLock<Regex> = LazyLock::new(|| claims_regex(false));

/// Unsubstantiated claims, with the claim found.
pub fn find_claims(text: &str) -> Vec<(Hit, String)> {
    if !CLAIM_CANDIDATE.is_match(text) {
        return Vec::new();
    }
    CLAIM_RE
        .find_iter(text)
        .map(|m| (char_hit(text, m.start(), m.end()), m.as_str().to_string()))
        .collect()
}

/// Everything the audit calls an error in a text: prohibited terms, personal data,
/// placeholders. Sorted by start.
pub fn error_hits(text: &str, prohibited: &[String]) -> Vec<Hit> {
    let mut hits: Vec<Hit> = find_terms(text, prohibited);
    hits.extend(find_emails(text));
    hits.extend(find_phones(text));
    hits.extend(find_placeholders(text));
    hits.sort_by_key(|h| (h.start, h.end));
    hits
}

/// Whether each of `texts` is free of what [`error_hits`] finds — the same answers, from
/// one look at the texts joined by a char no rule reads across (`|`: no letter, digit,
/// separator or word char, and in no pattern's class but the bracket placeholders', whose
/// match then spans two texts). A hit inside one text is that text's; a text a hit spans
/// into (rare) is looked at alone. For short texts by the dozen (tags, hashtags): one
/// scan's set-up instead of one each (callgrind, the bench's usual command: an artifact's
/// tags 24.3k → 16.2k instructions).
pub fn clean_each<S: AsRef<str>>(texts: &[S], prohibited: &[String]) -> Vec<bool> {
    const JOIN: char = '|';
    let mut joined = String::new();
    // Each text's char range in `joined`.
    let mut ranges = Vec::with_capacity(texts.len());
    let mut at = 0;
    for (k, t) in texts.iter().enumerate() {
        if k > 0 {
            joined.push(JOIN);
            at += 1;
        }
        let t = t.as_ref();
        joined.push_str(t);
        let n = t.chars().count();
        ranges.push(at..at + n);
        at += n;
    }
    let mut clean = vec![true; texts.len()];
    let mut alone = vec![false; texts.len()];
    for h in error_hits(&joined, prohibited) {
        let mut touched = ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| h.start < r.end && r.start < h.end);
        match (touched.next(), touched.next()) {
            (Some((k, r)), None) if r.start <= h.start && h.end <= r.end => clean[k] = false,
            (first, second) => {
                for (k, _) in first.into_iter().chain(second).chain(touched) {
                    alone[k] = true;
                }
            }
        }
    }
    for (k, t) in texts.iter().enumerate() {
        if alone[k] && clean[k] {
            clean[k] = error_hits(t.as_ref(), prohibited).is_empty();
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::every_string as strings;

    #[test]
    fn a_camel_step_is_found_as_a_pair_by_pair_look_finds_it() {
        let alphabet = ["a", "Z", "z", "A", "@", "[", "`", "{", "7", " "];
        for t in strings(&alphabet, 4) {
            let b = t.as_bytes();
            let by_pairs = b
                .windows(2)
                .any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
            assert_eq!(has_camel_step(b), by_pairs, "{t:?}");
        }
    }

    #[test]
    fn ascii_folds_as_the_general_folding_does() {
        let alphabet = ["a", "Z", "q", "F", "7", " ", "-", "#", "'", "\t"];
        for t in strings(&alphabet, 5) {
            let (fast, general) = (Skeleton::new(&t), Skeleton::folded_char_by_char(&t));
            let (b, spaces): (&[u8], &[usize]) = match &fast {
                Skeleton::Ascii(b) => (b, &[]),
                Skeleton::Spaced { bytes, spaces } => {
                    assert!(has_camel_step(t.as_bytes()), "{t:?}");
                    (bytes, spaces)
                }
                Skeleton::Folded { .. } => panic!("{t:?} folded char by char"),
            };
            let chars: Vec<char> = b
                .iter()
                .map(|c| char::from(c.to_ascii_lowercase()))
                .collect();
            let origin: Vec<usize> = (0..b.len())
                .map(|k| k - spaces.partition_point(|&p| p < k))
                .collect();
            assert_eq!(Skeleton::Folded { chars, origin }, general, "{t:?}");
        }
    }

    #[test]
    fn terms_are_found_in_ascii_as_in_the_general_folding() {
        let alphabet = ["f", "R", "e", "E", " ", "-", "x", "é"];
        let terms: Vec<Vec<char>> = ["free", "fe", "e", "ree x"].map(term_letters).to_vec();
        let mut found = 0;
        for t in strings(&alphabet, 6) {
            for letters in &terms {
                let general = find_in(&Skeleton::folded_char_by_char(&t), letters);
                found += general.len();
                assert_eq!(find_in(&Skeleton::new(&t), letters), general, "{t:?}");
            }
        }
        assert!(found > 100_000, "{found}");
    }

    #[test]
    fn folding_by_runs_equals_folding_char_by_char() {
        let alphabet = [
            "a", "Z", "-", " ", "é", "É", "ß", "’", "\u{FB01}", "e\u{301}", "Ω", "#Ab",
        ];
        for t in strings(&alphabet, 5) {
            let (runs, one_by_one) = (Skeleton::folded(&t), Skeleton::folded_char_by_char(&t));
            assert_eq!(runs, one_by_one, "{t:?}");
        }
    }

    #[test]
    fn no_char_outside_ascii_folds_to_a_letter_of_lorem_or_placeholder() {
        let all: String = (0x80..=0x10FFFF).filter_map(char::from_u32).collect();
        let letters = Regex::new("(?i)[loremplacehd]").unwrap();
        assert_eq!(letters.find(&all).map(|m| m.as_str().to_string()), None);
        // The check itself would see one: the Kelvin sign folds to `k`.
        assert!(Regex::new("(?i)k").unwrap().is_match("\u{212A}"));
    }

    #[test]
    fn the_placeholder_prefilter_never_hides_a_match() {
        let pieces = [
            "lorem",
            "LoReM",
            " ",
            "ipsum",
            "[",
            "]",
            "insert",
            "{{",
            "}}",
            "placeholder",
            "PLACEHOLDER",
            "TODO",
            "TBD",
            "XXX",
            "FIXME",
            "todo",
            "x",
            "é",
            "\u{17F}",
        ];
        let mut matched = 0;
        for t in strings(&pieces, 4) {
            let expected = placeholders_by_regex(&t);
            matched += usize::from(!expected.is_empty());
            assert_eq!(find_placeholders(&t), expected, "{t:?}");
        }
        assert!(matched > 10_000, "{matched}");
    }

    fn spans(text: &str, term: &str) -> Vec<(usize, usize)> {
        find_term(text, term)
            .into_iter()
            .map(|h| (h.start, h.end))
            .collect()
    }

    #[test]
    fn a_term_matches_case_insensitively_on_word_boundaries() {
        assert_eq!(spans("Get it FREE today", "free"), vec![(7, 11)]);
        assert!(spans("freedom and carefree", "free").is_empty());
    }

    #[test]
    fn evasions_with_separators_between_letters_are_caught() {
        assert_eq!(spans("now f-r-e-e!", "free"), vec![(4, 11)]);
        assert_eq!(spans("F.R.E.E shipping", "free"), vec![(0, 7)]);
        assert_eq!(spans("f r e e", "free"), vec![(0, 7)]);
        assert_eq!(spans("f_r_e_e", "free"), vec![(0, 7)]);
    }

    #[test]
    fn accents_do_not_hide_a_term() {
        assert_eq!(spans("tout est frée", "free"), vec![(9, 13)]);
        assert_eq!(spans("Ça coûte rien", "coute"), vec![(3, 8)]);
    }

    #[test]
    fn multi_word_terms_match_across_their_spaces_and_evasions() {
        assert_eq!(spans("a cheap deal", "cheap deal"), vec![(2, 12)]);
        assert_eq!(spans("a cheap-deal", "cheap deal"), vec![(2, 12)]);
        assert!(spans("a cheap ideal", "cheap deal").is_empty());
    }

    #[test]
    fn camel_case_hashtags_are_read_as_words() {
        assert_eq!(spans("#FreeShipping", "free"), vec![(1, 5)]);
        assert!(spans("#carefree", "free").is_empty());
    }

    #[test]
    fn emails_and_phones_are_found_but_years_prices_and_dates_are_not() {
        assert_eq!(find_emails("write to ana.lopez@example.co.uk now").len(), 1);
        assert_eq!(find_phones("call +1 (555) 010-2030").len(), 1);
        assert_eq!(find_phones("call 555-0102").len(), 1);
        assert!(find_phones("since 2025, from $1,299.99, on 2026-03-14").is_empty());
    }

    #[test]
    fn placeholders_are_found() {
        assert_eq!(find_placeholders("Lorem ipsum dolor").len(), 1);
        assert_eq!(
            find_placeholders("Buy [insert product] now {{name}}").len(),
            2
        );
        assert_eq!(find_placeholders("TODO: write TBD XXX").len(), 3);
        assert!(find_placeholders("todo el mundo").is_empty());
    }

    #[test]
    fn texts_looked_at_together_are_found_clean_as_each_alone() {
        let prohibited = vec!["free".to_string(), "no fee".to_string()];
        let pieces = [
            "fr", "ee", "Free", "[insert", "]", "{{", "}}", "a@b.co", "555", "1234", "|", "é", " ",
            "TODO", "no", "-", "Fee",
        ];
        let texts = strings(&pieces, 2);
        let mut dirty = 0;
        for (i, a) in texts.iter().enumerate().step_by(3) {
            for b in texts.iter().skip(i % 7).step_by(5) {
                for c in [&texts[0], &texts[(i * 31) % texts.len()]] {
                    let group = [a, b, c];
                    let alone: Vec<bool> = group
                        .iter()
                        .map(|t| error_hits(t, &prohibited).is_empty())
                        .collect();
                    dirty += alone.iter().filter(|ok| !**ok).count();
                    assert_eq!(clean_each(&group, &prohibited), alone, "{group:?}");
                }
            }
        }
        assert!(dirty > 1000, "the pieces make errors: {dirty}");
        assert!(clean_each::<&str>(&[], &prohibited).is_empty());
    }

    #[test]
    fn claims_are_found_with_their_wording() {
        let found: Vec<String> =
            find_claims("The best bike, #1 in town, 100% risk-free. Guaranteed!")
                .into_iter()
                .map(|(_, c)| c.to_lowercase())
                .collect();
        assert_eq!(found, vec!["best", "#1", "100%", "risk-free", "guaranteed"]);
        assert!(find_claims("bestow a gift").is_empty());
    }

    #[test]
    fn claims_are_found_as_the_bounded_regex_alone_finds_them() {
        let alphabet = [
            "best", "BeSt", "é", "#1", " ", "x", "✨", "100%", "be", "ſt", "-",
        ];
        let mut found = 0;
        for t in strings(&alphabet, 3) {
            let alone: Vec<(Hit, String)> = CLAIM_RE
                .find_iter(&t)
                .map(|m| (char_hit(&t, m.start(), m.end()), m.as_str().to_string()))
                .collect();
            found += alone.len();
            assert_eq!(find_claims(&t), alone, "{t:?}");
        }
        assert!(found > 100, "the alphabet makes claims: {found}");
    }
}
