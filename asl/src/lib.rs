//! An Amazon States Language engine: runs a state machine definition in process with AWS's
//! documented semantics for the subset it implements — Pass, Task, Choice, Parallel, Map
//! (inline), Succeed, Fail; InputPath / Parameters / ResultSelector / ResultPath /
//! OutputPath; Retry (IntervalSeconds, BackoffRate, MaxAttempts, MaxDelaySeconds); Catch
//! with ResultPath; TimeoutSeconds on Tasks, Parallels, Maps and the machine. The loader is
//! strict: anything else, a field of the wrong type or out of range, is refused when the
//! definition is loaded, naming the construct and the state. Tasks run through a
//! [`TaskInvoker`] the caller provides.

mod load;
mod model;
mod path;
mod run;

pub use model::{ExecutionError, LoadError, StateMachine, TaskError, TaskInvoker};
pub use path::RefPath;
pub use run::MAX_TRANSITIONS;

#[cfg(test)]
mod tests;
