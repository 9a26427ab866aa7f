//! Campaign Orchestration Core: domain, ports, built-in agents, audit rules and adapters.
//! Never depends on `lambda_runtime`: functions and the CLI wrap what is here.

pub mod adapters;
pub mod agents;
pub mod domain;
pub mod errors;
pub mod flow;
#[cfg(feature = "http")]
pub mod http;
pub mod observe;
pub mod ports;
pub mod runtime;
pub mod usecases;
