//! Choosing the next token from a row of logits: greedy, or temperature
//! with top-k, top-p and min-p filtering, from a seeded generator. Also the
//! log-probabilities the API reports, always of the model's own
//! distribution (before temperature), as OpenAI and vLLM report them.
//!
//! Choosing is two steps: `distribution` (the pure part: the candidates and
//! their probabilities) and a draw from it with the request's generator.
//! The filters act in this order, which is vLLM's V0 sampler's (V1 moved
//! min-p ahead of top-k and top-p, which changes top-p's mass):
//!
//! 1. temperature: probabilities are softmax(logits / T);
//! 2. top-k: the k best tokens stay (ties go to the lower id), renormalised;
//! 3. top-p: the smallest best-first prefix whose mass, within what top-k
//!    left, reaches p (at least one token);
//! 4. min-p: tokens with probability at least min_p × the best one's. Being
//!    relative to the best token, it keeps the same tokens wherever it sits
//!    in the chain; what the order decides is that top-p's mass is *not*
//!    renormalised over min-p's survivors first.
//!
//! The survivors are renormalised and one is drawn.

use super::grammar::TokenMask;
use super::penalties::LogitsProcessor;
use super::request::{SamplingParams, TokenLogprob};
use super::rng::Rng;

pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    processor: LogitsProcessor,
    candidates: Candidates,
    /// The logits with disallowed tokens at -inf.
    masked: Vec<f32>,
}

impl Sampler {
    /// `prompt` is the history the repetition penalty looks at.
    pub fn new(params: &SamplingParams, prompt: &[u32]) -> Self {
        let rng = match params.seed {
            Some(seed) => Rng::seeded(seed),
            None => Rng::from_entropy(),
        };
        Sampler {
            params: params.clone(),
            rng,
            processor: LogitsProcessor::new(params.penalties.clone(), prompt),
            candidates: Candidates::default(),
            masked: Vec::new(),
        }
    }

    /// Chooses the next token and records it in the history.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.sample_within(logits, None)
    }

    /// Chooses the next token among `allowed` (all tokens when None) and
    /// records it. Tokens outside the set are given no chance at all, as
    /// if their logit were -inf; should every allowed logit be non-finite,
    /// the lowest allowed id is chosen.
    /// Notes a token chosen elsewhere (the device's argmax), as sampling
    /// it here would have.
    pub fn record(&mut self, token: u32) {
        self.processor.record(token);
    }

    pub fn sample_within(&mut self, logits: &[f32], allowed: Option<&TokenMask>) -> u32 {
        let logits = self.processor.apply(logits);
        let logits = match allowed {
            None => logits,
            Some(mask) => {
                self.masked.clear();
                self.masked.extend(logits.iter().enumerate().map(|(i, &l)| {
                    if mask.contains(i as u32) {
                        l
                    } else {
                        f32::NEG_INFINITY
                    }
                }));
                &self.masked
            }
        };
        let mut t = self
            .candidates
            .filter(&self.params, logits)
            .draw(&mut self.rng);
        if let Some(mask) = allowed {
            if !mask.contains(t) {
                t = mask.first().unwrap_or(t);
            }
        }
        self.processor.record(t);
        t
    }

    /// The distribution `sample` would draw the next token from, given the
    /// history so far (penalties and logit bias applied, then
    /// `distribution`). Records nothing and draws nothing.
    pub fn distribution(&mut self, logits: &[f32]) -> Vec<(u32, f64)> {
        let logits = self.processor.apply(logits);
        self.candidates.filter(&self.params, logits).to_vec()
    }
}

/// The distribution the next token is drawn from, before any penalty: the
/// candidate tokens and their probabilities after temperature, top-k, top-p
/// and min-p, renormalised, best first (ties: lower id first). Greedy
/// (temperature 0 or top_k 1) gives the argmax alone, with probability 1;
/// so does a row with no finite logit. Otherwise tokens with a non-finite
/// logit (NaN, -inf, but also +inf) are never candidates.
pub fn distribution(p: &SamplingParams, logits: &[f32]) -> Vec<(u32, f64)> {
    Candidates::default().filter(p, logits).to_vec()
}

/// Buffers for one row's candidates, kept across tokens so that a step
/// allocates nothing once it has seen a full row.
#[derive(Default)]
struct Candidates {
    /// (token, logit).
    cand: Vec<(u32, f32)>,
    /// Probabilities within what top-k kept.
    probs: Vec<f64>,
}

/// What remains to draw from.
enum Filtered<'a> {
    /// One token for certain; nothing is drawn.
    Only(u32),
    /// Candidates best first with weights proportional to their
    /// probabilities; `mass` is the weights' sum.
    Among {
        cand: &'a [(u32, f32)],
        weights: &'a [f64],
        mass: f64,
    },
}

impl Candidates {
    fn filter<'a>(&'a mut self, p: &SamplingParams, logits: &[f32]) -> Filtered<'a> {
        if p.is_greedy() {
            return Filtered::Only(argmax(logits));
        }
        // Candidates sorted by logit, best first; ties keep the lower id.
        let cand = &mut self.cand;
        cand.clear();
        cand.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as u32, l)),
        );
        if cand.is_empty() {
            return Filtered::Only(argmax(logits));
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if p.top_k > 0 && (p.top_k as usize) < cand.len() {
            let k = p.top_k as usize;
            cand.select_nth_unstable_by(k - 1, by_logit);
            cand.truncate(k);
        }
        cand.sort_unstable_by(by_logit);
        let t = p.temperature as f64;
        let max = cand[0].1 as f64;
        let probs = &mut self.probs;
        probs.clear();
        probs.extend(cand.iter().map(|&(_, l)| ((l as f64 - max) / t).exp()));
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= total);
        let mut keep = probs.len();
        if p.min_p > 0.0 {
            let floor = probs[0] * p.min_p as f64;
            keep = keep.min(probs.iter().take_while(|&&q| q >= floor).count().max(1));
        }
        if p.top_p < 1.0 {
            // Mass within top-k's survivors, not renormalised by min-p.
            let mut acc = 0.0;
            let mut n = 0;
            for &q in &probs[..keep] {
                acc += q;
                n += 1;
                if acc >= p.top_p as f64 {
                    break;
                }
            }
            keep = n.max(1);
        }
        let weights = &probs[..keep];
        Filtered::Among {
            cand: &cand[..keep],
            weights,
            mass: weights.iter().sum(),
        }
    }
}

impl Filtered<'_> {
    /// One token, with probability proportional to its weight: one uniform
    /// number, walked down the candidates best first.
    fn draw(&self, rng: &mut Rng) -> u32 {
        match *self {
            Filtered::Only(t) => t,
            Filtered::Among {
                cand,
                weights,
                mass,
            } => {
                let mut r = rng.next_f64() * mass;
                for (&(id, _), &q) in cand.iter().zip(weights) {
                    if r < q {
                        return id;
                    }
                    r -= q;
                }
                cand[cand.len() - 1].0
            }
        }
    }

    /// Renormalised, best first.
    fn to_vec(&self) -> Vec<(u32, f64)> {
        match *self {
            Filtered::Only(t) => vec![(t, 1.0)],
            Filtered::Among {
                cand,
                weights,
                mass,
            } => cand
                .iter()
                .zip(weights)
                .map(|(&(id, _), &q)| (id, q / mass))
                .collect(),
        }
    }
}

/// The highest logit; the lowest id wins a tie.
pub use crate::backend::argmax;

/// log-softmax of `logits` at `token`, with the `top` best alternatives.
pub fn logprob_of(logits: &[f32], token: u32, top: usize) -> TokenLogprob {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l)) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    let lp = |id: u32| (logits[id as usize] as f64 - lse) as f32;
    let mut alternatives = Vec::new();
    if top > 0 {
        let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
        let k = top.min(idx.len());
        let cmp = |a: &u32, b: &u32| {
            logits[*b as usize]
                .total_cmp(&logits[*a as usize])
                .then(a.cmp(b))
        };
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
        idx.sort_unstable_by(cmp);
        alternatives = idx.into_iter().map(|id| (id, lp(id))).collect();
    }
    TokenLogprob {
        token,
        logprob: lp(token),
        top: alternatives,
    }
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;
