//! RFC 3339 timestamps as the API, the events and the stores write them: for
//! `#[serde(with = "crate::domain::rfc3339")]`, text for text the same as
//! `time::serde::rfc3339` (seconds' fraction without trailing zeros, `Z` for UTC).
//!
//! Writing is done here for UTC times of years 0–9999, every time this system makes: the
//! `time` crate's general formatting (padding each number through a generic writer, into
//! a new `String`) took ~1.7k instructions more per timestamp (callgrind, `campaign
//! bench`: an event body 4.2k → 2.5k), and a run writes ~20 of them. Anything else, and
//! all reading, is the `time` crate's.

use serde::{Deserializer, Serializer};
use time::{OffsetDateTime, UtcOffset};

/// The longest text [`write`] makes: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LONGEST: usize = 30;

/// Writes `t` into `out`, returning its length; `None` unless `t` is UTC in years 0–9999.
fn write(t: OffsetDateTime, out: &mut [u8; LONGEST]) -> Option<usize> {
    if t.offset() != UtcOffset::UTC || !(0..10_000).contains(&t.year()) {
        return None;
    }
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, nanos) = t.to_hms_nano();
    *out = *b"0000-00-00T00:00:00.000000000Z";
    digits(&mut out[0..4], year.unsigned_abs());
    digits(&mut out[5..7], u32::from(u8::from(month)));
    digits(&mut out[8..10], u32::from(day));
    digits(&mut out[11..13], u32::from(hour));
    digits(&mut out[14..16], u32::from(minute));
    digits(&mut out[17..19], u32::from(second));
    if nanos == 0 {
        out[19] = b'Z';
        return Some(20);
    }
    digits(&mut out[20..29], nanos);
    // The fraction without its trailing zeros (nanos != 0: at least one digit stays).
    let mut end = 29;
    while out[end - 1] == b'0' {
        end -= 1;
    }
    out[end] = b'Z';
    Some(end + 1)
}

/// `v`'s last `out.len()` decimal digits, zero-padded, into `out`.
fn digits(out: &mut [u8], mut v: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; LONGEST];
    match write(*t, &mut buf).and_then(|n| std::str::from_utf8(&buf[..n]).ok()) {
        Some(text) => s.serialize_str(text),
        None => time::serde::rfc3339::serialize(t, s),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(d)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::format_description::well_known::Rfc3339;

    use super::*;

    fn ours(t: OffsetDateTime) -> Result<String, String> {
        serde_json::to_value(Wrapped(t))
            .map_err(|e| e.to_string())
            .and_then(|v| v.as_str().map(String::from).ok_or_else(|| v.to_string()))
    }

    #[derive(serde::Serialize)]
    struct Wrapped(#[serde(with = "super")] OffsetDateTime);

    proptest! {
        #[test]
        fn writes_what_the_time_crate_writes(
            // Year 0 to the last day of 9999: a day's margin, so that no offset takes the
            // instant past the last one `time` can hold (`to_offset` would panic).
            secs in -62_167_219_200i64..253_402_214_400,
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000, (0u32..1000).prop_map(|m| m * 1_000_000)],
            offset_minutes in prop_oneof![Just(0i32), -1439i32..1440],
        ) {
            let utc = OffsetDateTime::from_unix_timestamp(secs).expect("in range")
                + time::Duration::nanoseconds(i64::from(nanos));
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).expect("in range");
            let t = utc.to_offset(offset);
            let theirs = t.format(&Rfc3339).map_err(|e| e.to_string());
            match theirs {
                Ok(text) => prop_assert_eq!(ours(t), Ok(text)),
                Err(_) => prop_assert!(ours(t).is_err()),
            }
        }
    }

    #[test]
    fn reads_what_it_writes() {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(1_764_676_800_120_000_000).expect("in range");
        let text = ours(t).expect("formats");
        assert_eq!(text, "2025-12-02T12:00:00.12Z");
        #[derive(serde::Deserialize)]
        struct Read(#[serde(with = "super")] OffsetDateTime);
        let Read(back) = serde_json::from_value(serde_json::json!(text)).expect("parses");
        assert_eq!(back, t);
    }
}
