//! Evaluating a version: the perplexity of a text (more to come: golden
//! prompts with expected answers, promotion gates).

pub mod perplexity;
