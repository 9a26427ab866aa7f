//! Helpers for the workspace integration tests.
