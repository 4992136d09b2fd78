//! Evaluating a version: the perplexity of a text as llama-perplexity
//! computes it, evaluation sets of golden prompts and a text, and the
//! gate that compares a candidate with stable before it takes over.

mod gate;
pub mod perplexity;
pub mod run;
pub mod set;
