//! Fuzzes brief parsing and validation: any bytes must give a brief or a clear error —
//! never a panic, never an empty explanation — and an accepted brief must validate again
//! to itself.

#![no_main]

use campaign_shared::domain::{Brief, BriefError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Brief::parse(data) {
        Ok(brief) => {
            let again = Brief::from_value(&serde_json::to_value(&brief).expect("serializes")).expect("revalidates");
            assert_eq!(again, brief);
        }
        Err(BriefError::Invalid(v)) => {
            assert!(!v.is_empty());
            assert!(v.iter().all(|v| !v.field.is_empty() && !v.message.is_empty()));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
