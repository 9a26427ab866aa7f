//! Local embedded mode's adapters: SQLite store, in-process bus, admission limits, and
//! the workflow over the ASL engine. `runtime::local` puts them together.

pub mod admission;
pub mod bus;
pub mod sqlite;
pub mod workflow;
