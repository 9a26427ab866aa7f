//! Sortable identifiers (ULIDs): newer IDs sort after older ones, which gives
//! "newest first" listings and stable ordering in every store.

use serde::{Deserialize, Serialize};
use std::fmt;
use ulid::{ULID_LEN, Ulid};

macro_rules! ulid_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(Ulid);

        impl $name {
            pub fn new() -> Self {
                Self(Ulid::new())
            }
            pub fn from_ulid(u: Ulid) -> Self {
                Self(u)
            }
            pub fn ulid(&self) -> Ulid {
                self.0
            }
            /// The 26-character Crockford base32 form, written into `buf` (no allocation:
            /// ids are written a few dozen times per run — JSON, SQL keys).
            pub fn encode<'b>(&self, buf: &'b mut [u8; ULID_LEN]) -> &'b str {
                self.0.array_to_str(buf)
            }
            /// Parses the 26-character Crockford base32 form; the error says what is expected.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                Ulid::from_string(s.trim()).map(Self).map_err(|_| IdError {
                    what: $what,
                    given: s.chars().take(64).collect(),
                })
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.encode(&mut [0; ULID_LEN]))
            }
        }

        /// As its string form, written straight into the serializer (no `String` made).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.encode(&mut [0; ULID_LEN]))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_string()
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

ulid_id!(RunId, "run id");
ulid_id!(ArtifactId, "artifact id");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{given}` is not a valid {what}: expected a 26-character ULID such as 01JD5Z8X7Q2M4N6P8R0S2T4V6W"
)]
pub struct IdError {
    pub what: &'static str,
    pub given: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_string_form() {
        let id = RunId::new();
        assert_eq!(RunId::parse(&id.to_string()).unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<RunId>(&json).unwrap(), id);
    }

    #[test]
    fn ids_serialize_display_and_pad_as_their_ulid_string() {
        for id in [
            RunId::new(),
            RunId::from_ulid(Ulid::nil()),
            RunId::from_ulid(Ulid::from_parts(u64::MAX >> 16, u128::MAX)),
        ] {
            let s = id.ulid().to_string();
            assert_eq!(id.to_string(), s);
            assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
            assert_eq!(format!("{id:>30}"), format!("{s:>30}"));
            assert_eq!(format!("{:.4}", ArtifactId::from_ulid(id.ulid())), s[..4]);
        }
    }

    #[test]
    fn a_malformed_id_is_rejected_with_what_is_expected() {
        let e = RunId::parse("run-42").unwrap_err();
        assert!(e.to_string().contains("26-character ULID"));
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let a = RunId::from_ulid(Ulid::from_parts(1_000, 5));
        let b = RunId::from_ulid(Ulid::from_parts(2_000, 1));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }
}
