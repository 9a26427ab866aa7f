//! Composition roots: where the ports get their adapters. One per deployment, side by side.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "local")]
pub mod local;
