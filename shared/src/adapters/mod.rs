//! Adapters: implementations of the ports.

#[cfg(feature = "aws")]
pub mod aws;
/// Amazon Bedrock Converse / ConverseStream (feature `bedrock`).
#[cfg(feature = "bedrock")]
pub mod bedrock;
pub mod builtin;
pub mod chat;
pub mod faults;
pub mod generators;
/// The embedded deployment: SQLite store, in-process bus, ASL engine. Not compiled into the
/// Lambda functions (feature `local`).
#[cfg(feature = "local")]
pub mod local;
/// OpenAI-compatible chat completions (feature `openai`).
#[cfg(feature = "openai")]
pub mod openai;
