//! The build script of every function package (`build = "../no-pie.rs"` in each manifest):
//! link the Lambda binaries as position-dependent executables.
//!
//! A position-independent executable carries ~32,000 relative relocations (vtables, static
//! strings, tracing call sites): at every cold start the loader writes each of them,
//! copying ~126 pages of `.data.rel.ro`, and on a microVM (Lambda's, or this project's
//! test machines) every page fault is dear — the loader's relocations were nearly half of
//! a function's page faults at start. Linked at a fixed address there is
//! nothing to relocate. The trade: the executable's own code is not randomised (shared
//! libraries, stack and heap still are), as with Go binaries, the usual Lambda
//! executables. BENCHMARKS.md has the figures; deleting this file and the `build` lines
//! undoes it.

fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
