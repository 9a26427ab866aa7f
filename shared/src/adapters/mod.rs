//! Adapters: implementations of the ports.

#[cfg(feature = "aws")]
pub mod aws;
pub mod builtin;
pub mod local;
