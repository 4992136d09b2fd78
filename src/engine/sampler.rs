//! Choosing the next token from a row of logits: greedy, or temperature
//! with top-k, top-p and min-p filtering, from a seeded generator. Also the
//! log-probabilities the API reports, always of the model's own
//! distribution (before temperature), as OpenAI and vLLM report them.

use super::penalties::LogitsProcessor;
use super::request::{SamplingParams, TokenLogprob};
use super::rng::Rng;

pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    processor: LogitsProcessor,
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
        }
    }

    /// Chooses the next token and records it in the history.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let logits = self.processor.apply(logits);
        let t = choose(&self.params, &mut self.rng, logits);
        self.processor.record(t);
        t
    }
}

fn choose(p: &SamplingParams, rng: &mut Rng, logits: &[f32]) -> u32 {
    if p.temperature <= 0.0 || p.top_k == 1 {
        return argmax(logits);
    }
    // Candidates sorted by logit, best first; ties keep the lower id.
    let mut cand: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .map(|(i, &l)| (i as u32, l))
        .collect();
    if cand.is_empty() {
        return argmax(logits);
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
    let mut probs: Vec<f64> = cand
        .iter()
        .map(|&(_, l)| ((l as f64 - max) / t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|q| *q /= total);
    let mut keep = probs.len();
    if p.min_p > 0.0 {
        let floor = probs[0] * p.min_p as f64;
        keep = keep.min(probs.iter().take_while(|&&q| q >= floor).count().max(1));
    }
    if p.top_p < 1.0 {
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
    let mass: f64 = probs[..keep].iter().sum();
    let mut r = rng.next_f64() * mass;
    for (i, &q) in probs[..keep].iter().enumerate() {
        if r < q {
            return cand[i].0;
        }
        r -= q;
    }
    cand[keep - 1].0
}

/// The highest logit; the lowest id wins a tie.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

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
mod tests {
    use super::*;

    fn params(temperature: f32) -> SamplingParams {
        SamplingParams {
            temperature,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn greedy_takes_the_lowest_id_among_equal_maxima() {
        let mut s = Sampler::new(&params(0.0), &[]);
        assert_eq!(s.sample(&[0.0, 3.0, 1.0, 3.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_distribution_is_respected() {
        let logits: Vec<f32> = vec![2.0f32.ln(), 1.0f32.ln(), f32::NEG_INFINITY, 1.0f32.ln()];
        let mut p = params(1.0);
        p.seed = Some(42);
        let draw = |p: &SamplingParams| {
            let mut s = Sampler::new(p, &[]);
            (0..4000).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        let a = draw(&p);
        assert_eq!(a, draw(&p));
        let share0 = a.iter().filter(|&&t| t == 0).count() as f64 / a.len() as f64;
        assert!((share0 - 0.5).abs() < 0.03, "token 0 drawn {share0}");
        assert!(!a.contains(&2), "a -inf logit was sampled");
    }

    #[test]
    fn top_p_and_top_k_cut_the_tail() {
        let logits = vec![3.0f32, 2.0, 1.0, 0.0];
        let mut p = params(1.0);
        p.seed = Some(1);
        p.top_k = 2;
        let mut s = Sampler::new(&p, &[]);
        assert!((0..500).all(|_| s.sample(&logits) < 2));
        let mut p = params(1.0);
        p.seed = Some(1);
        p.top_p = 0.5; // token 0 alone holds ~64%
        let mut s = Sampler::new(&p, &[]);
        assert!((0..500).all(|_| s.sample(&logits) == 0));
    }

    #[test]
    fn logprobs_are_normalised_and_ranked() {
        let logits = vec![1.0f32, 3.0, 2.0];
        let lp = logprob_of(&logits, 2, 2);
        let total: f64 = logits
            .iter()
            .map(|&l| (logprob_of(&logits, 0, 0).logprob as f64 + (l - 1.0) as f64).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(lp.top[1].1, lp.logprob);
    }
}
