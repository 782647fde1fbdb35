//! Build execution.

pub mod queue;
