//! Constrained decoding: a grammar over bytes decides which tokens may come
//! next, so that what the model writes parses (`response_format`
//! `json_object` / `json_schema`, forced tool calls).
//!
//! `rules` builds grammars, `json_schema` compiles JSON and JSON Schema to
//! them, `matcher` runs one over bytes, and `vocab` turns a matcher state
//! into the set of tokens allowed next.

mod json_value;
mod matcher;
mod rules;
mod vocab;

pub mod json_schema;

pub use matcher::{Compiled, Matcher, State};
pub use rules::{
    bytes, literal, seq, ByteSet, Element, Grammar, GrammarBuilder, GrammarError, RuleId, Seq,
};
pub use vocab::{Constraint, TokenMask, TokenTrie};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
