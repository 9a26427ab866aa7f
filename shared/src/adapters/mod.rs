//! Adapters: implementations of the ports.

pub mod local;
