//! Logit processing before a token is chosen: logit bias, and the
//! repetition, presence and frequency penalties with vLLM's meanings.
//! The repetition penalty (CTRL's) divides positive logits and multiplies
//! negative ones of every token seen in the prompt or the output; the
//! presence penalty subtracts a constant from tokens the output already
//! holds, the frequency penalty a multiple of how often it holds them.

use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Penalties {
    pub presence: f32,
    pub frequency: f32,
    /// 1 means none.
    pub repetition: f32,
    /// (token, bias) added to the logit.
    pub logit_bias: Vec<(u32, f32)>,
}

impl Penalties {
    pub fn none() -> Self {
        Penalties {
            repetition: 1.0,
            ..Default::default()
        }
    }

    pub fn is_none(&self) -> bool {
        self.presence == 0.0
            && self.frequency == 0.0
            && self.repetition == 1.0
            && self.logit_bias.is_empty()
    }
}

/// The penalties of one request with the history they apply to.
pub struct LogitsProcessor {
    penalties: Penalties,
    prompt: HashSet<u32>,
    output: HashMap<u32, u32>,
    scratch: Vec<f32>,
}

impl LogitsProcessor {
    pub fn new(penalties: Penalties, prompt: &[u32]) -> Self {
        let prompt = if penalties.repetition != 1.0 {
            prompt.iter().copied().collect()
        } else {
            HashSet::new()
        };
        LogitsProcessor {
            penalties,
            prompt,
            output: HashMap::new(),
            scratch: Vec::new(),
        }
    }

    /// The logits to choose from: `logits` itself when nothing applies,
    /// otherwise a processed copy.
    pub fn apply<'a>(&'a mut self, logits: &'a [f32]) -> &'a [f32] {
        let p = &self.penalties;
        if p.is_none() {
            return logits;
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(logits);
        let out = &mut self.scratch;
        if p.repetition != 1.0 {
            let seen = self.prompt.iter().chain(self.output.keys());
            for &t in seen {
                if let Some(l) = out.get_mut(t as usize) {
                    *l = if *l > 0.0 {
                        *l / p.repetition
                    } else {
                        *l * p.repetition
                    };
                }
            }
        }
        for (&t, &n) in &self.output {
            if let Some(l) = out.get_mut(t as usize) {
                *l -= p.presence + p.frequency * n as f32;
            }
        }
        for &(t, b) in &p.logit_bias {
            if let Some(l) = out.get_mut(t as usize) {
                *l += b;
            }
        }
        &self.scratch
    }

    /// Records a chosen token in the output history.
    pub fn record(&mut self, token: u32) {
        if !self.penalties.is_none() {
            *self.output.entry(token).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
#[path = "penalties_tests.rs"]
mod tests;
