//! keg builds whole libraries of container images from Official Images manifests.
//!
//! The pipeline: `manifest` (parse + validate one file) -> `library` (find files, resolve
//! arguments) -> `git` / `dockerfile` / `context` (sources at a commit) -> `plan` (graph, keys)
//! -> `exec` (build) -> `report` (what people and CI see).

pub mod context;
pub mod dockerfile;
pub mod exec;
pub mod git;
pub mod shard;

/// Entry point used by `main.rs`; returns the process exit code.
pub fn main() -> i32 {
    0
}
