//! One manifest file: syntax (`parse`), rules (`validate`), the model (`model`) and the
//! normalized text bashbrew's `cat` prints (`write`).

pub mod model;
pub mod parse;
pub mod validate;
pub mod write;

pub use model::{Builder, Entry, Manifest};
pub use validate::{Parsed, parse};
