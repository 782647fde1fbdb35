//! Go `text/template` for `cat --format`, over bashbrew's data model.
//!
//! The pipeline is `lexer` (text to tokens) -> `parser` (tokens to a set of named trees) ->
//! `exec` (a tree over a [`Value`], with `funcs` and the `model`'s fields and methods) ->
//! text, with `gofmt` printing values as Go's `fmt` does.
//!
//! Invariants: a template means what it means to bashbrew (Go's syntax and semantics,
//! bashbrew's functions and data model, keg's additions only where bashbrew has nothing, see
//! docs/compat.md); errors carry Go's text and position (`template: NAME:LINE: ...` when
//! parsing, `template: NAME:LINE:COL: executing "NAME" at <NODE>: ...` when executing); user
//! input never panics, nor overflows the stack: nesting is capped when parsing
//! ([`parser::MAX_PARSE_DEPTH`]) and executing ([`exec::MAX_DEPTH`]), and the recursion below
//! those caps grows its stack on the heap ([`RED_ZONE`]).

pub mod exec;
pub mod funcs;
pub mod gofmt;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod value;

pub use exec::ExecError;
pub use model::{Froms, Host, RepoData};
pub use parser::ParseError;
pub use value::Value;

/// Stack that must be left before recursing one more level of a template (parsing,
/// executing, printing); below it, [`stacker`] moves the recursion to a fresh heap-allocated
/// segment of [`STACK_STEP`] bytes, as Go's goroutine stacks grow.
pub(crate) const RED_ZONE: usize = 256 * 1024;
pub(crate) const STACK_STEP: usize = 4 * 1024 * 1024;

/// A parsed template set: the top-level template (named as given) and its definitions.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    text: String,
    set: parser::Set,
}

impl Template {
    /// Parses `text` as the template `name`; every function name must be one of
    /// [`funcs::NAMES`].
    pub fn parse(name: &str, text: &str) -> Result<Template, ParseError> {
        let set = parser::parse(name, text, &|f| funcs::lookup(f).is_some())?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            set,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the top-level template over `data`, appending to `out` (partial output stays
    /// there on error, as Go leaves it in the writer).
    pub fn execute<'a>(
        &'a self,
        data: Value<'a>,
        host: &dyn Host<'a>,
        out: &mut String,
    ) -> Result<(), ExecError> {
        exec::Exec::new(&self.set, &self.text, &self.name, host, out).run(&self.name, data)
    }
}

#[cfg(test)]
mod tests;
