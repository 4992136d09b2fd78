//! Tests of `penalties.rs`: computed distributions against hand-written
//! f64 references.

use super::*;

#[test]
fn nothing_to_do_returns_the_logits_themselves() {
    let logits = [1.0, 2.0];
    let mut p = LogitsProcessor::new(Penalties::none(), &[0]);
    assert!(std::ptr::eq(p.apply(&logits), &logits[..]));
}

#[test]
fn penalties_follow_their_definitions() {
    let logits = [2.0f32, -2.0, 1.0, 0.5];
    let pen = Penalties {
        presence: 0.5,
        frequency: 0.25,
        repetition: 2.0,
        logit_bias: vec![(3, 10.0)],
    };
    let mut p = LogitsProcessor::new(pen, &[1]);
    p.record(0);
    p.record(0);
    let out = p.apply(&logits).to_vec();
    // Token 0: seen twice in the output: 2/2 − 0.5 − 2·0.25.
    assert_eq!(out[0], 0.0);
    // Token 1: in the prompt only: repetition applies, presence does not.
    assert_eq!(out[1], -4.0);
    // Token 2: untouched; token 3: biased.
    assert_eq!(out[2], 1.0);
    assert_eq!(out[3], 10.5);
}

// ---- The distribution a sampler draws from, under each penalty ----

use crate::engine::sampler::Sampler;
use crate::engine::SamplingParams;

/// Logits whose penalised values are exact in f32 (multiples of 1/8
/// scaled by 1.25, 0.5 and 2), so the f64 reference needs no rounding.
const LOGITS: [f32; 8] = [2.5, -1.5, 1.25, 0.75, -0.5, 0.0, 3.0, -2.25];

/// A temperature-`t` sampler that has already generated `generated`
/// after `prompt`.
fn sampler(pen: Penalties, t: f32, prompt: &[u32], generated: &[u32]) -> Sampler {
    let p = SamplingParams {
        temperature: t,
        seed: Some(11),
        penalties: pen,
        ..SamplingParams::default()
    };
    let mut s = Sampler::new(&p, prompt);
    for &g in generated {
        // Only `g` is finite, so `g` is what comes out, penalised or not.
        let mut one = [f32::NEG_INFINITY; LOGITS.len()];
        one[g as usize] = 0.0;
        assert_eq!(s.sample(&one), g);
    }
    s
}

/// softmax(logits / t) by hand, best first, the lower id first on ties.
fn softmax(logits: &[f64], t: f64) -> Vec<(u32, f64)> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) / t).exp()).collect();
    let total: f64 = exps.iter().sum();
    let mut d: Vec<(u32, f64)> = (0..logits.len() as u32)
        .map(|i| (i, exps[i as usize] / total))
        .collect();
    d.sort_by(|a, b| {
        logits[b.0 as usize]
            .partial_cmp(&logits[a.0 as usize])
            .unwrap()
            .then(a.0.cmp(&b.0))
    });
    d
}

fn base() -> Vec<f64> {
    LOGITS.iter().map(|&l| l as f64).collect()
}

fn assert_dist(got: &[(u32, f64)], want: &[(u32, f64)], what: &str) {
    let ids = |d: &[(u32, f64)]| d.iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "{what}: ranking");
    for (&(id, g), &(_, w)) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-9 * w,
            "{what}: token {id}: got {g:e}, want {w:e}"
        );
    }
}

#[test]
fn presence_subtracts_a_constant_from_generated_tokens_only() {
    let pen = Penalties {
        presence: 0.75,
        ..Penalties::none()
    };
    // Tokens 0 and 1 are only in the prompt: the presence penalty, like
    // OpenAI's and vLLM's, counts the output alone.
    let mut s = sampler(pen.clone(), 1.0, &[0, 1], &[3, 3, 4, 6]);
    let mut want = base();
    for t in [3, 4, 6] {
        want[t] -= 0.75; // once, however often seen
    }
    let got = s.distribution(&LOGITS);
    assert_dist(&got, &softmax(&want, 1.0), "presence");
    // Asking records nothing: the same answer again, and no change
    // until a token is sampled.
    assert_eq!(s.distribution(&LOGITS), got);
    let mut fresh = sampler(pen, 1.0, &[0, 1], &[]);
    assert_dist(
        &fresh.distribution(&LOGITS),
        &softmax(&base(), 1.0),
        "fresh",
    );
    // With a repetition penalty the prompt is kept as history too; its
    // tokens still get the repetition penalty alone.
    let with_repetition = Penalties {
        presence: 0.75,
        repetition: 2.0,
        ..Penalties::none()
    };
    let mut s = sampler(with_repetition, 1.0, &[0, 1], &[3, 3, 4, 6]);
    let mut want = base();
    for t in [0, 1, 3, 4, 6] {
        let l = want[t];
        want[t] = if l > 0.0 { l / 2.0 } else { l * 2.0 };
    }
    for t in [3, 4, 6] {
        want[t] -= 0.75;
    }
    let what = "presence with repetition";
    assert_dist(&s.distribution(&LOGITS), &softmax(&want, 1.0), what);
}

#[test]
fn frequency_subtracts_a_multiple_of_the_count() {
    let pen = Penalties {
        frequency: 0.5,
        ..Penalties::none()
    };
    let generated = [3, 3, 3, 4, 6, 6];
    let mut want = base();
    want[3] -= 0.5 * 3.0;
    want[4] -= 0.5;
    want[6] -= 0.5 * 2.0;
    // Penalties act on logits, before the temperature divides them.
    for t in [1.0f32, 0.5] {
        let mut s = sampler(pen.clone(), t, &[0], &generated);
        let what = format!("frequency, T={t}");
        assert_dist(&s.distribution(&LOGITS), &softmax(&want, t as f64), &what);
    }
    // With presence as well: both add up.
    let both = Penalties {
        presence: 0.25,
        frequency: 0.5,
        ..Penalties::none()
    };
    let mut s = sampler(both, 1.0, &[0], &generated);
    for t in [3, 4, 6] {
        want[t] -= 0.25;
    }
    assert_dist(&s.distribution(&LOGITS), &softmax(&want, 1.0), "both");
}

#[test]
fn repetition_divides_positive_and_multiplies_negative_logits_of_the_history() {
    // Prompt 0 (positive), 1 (negative), 5 (zero); output 2 (positive)
    // and 4 (negative, twice: the penalty applies once).
    let (prompt, generated) = ([0, 1, 5], [2, 4, 4]);
    for r in [1.25f32, 0.5] {
        let pen = Penalties {
            repetition: r,
            ..Penalties::none()
        };
        let mut s = sampler(pen, 1.0, &prompt, &generated);
        let mut want = base();
        for t in [0, 1, 2, 4, 5] {
            let l = want[t];
            want[t] = if l > 0.0 { l / r as f64 } else { l * r as f64 };
        }
        let what = format!("repetition {r}");
        assert_dist(&s.distribution(&LOGITS), &softmax(&want, 1.0), &what);
    }
}

#[test]
fn logit_bias_adds_to_the_named_tokens() {
    let pen = Penalties {
        logit_bias: vec![(2, 1.5), (5, -0.75)],
        ..Penalties::none()
    };
    let mut s = sampler(pen, 1.0, &[2], &[]);
    let mut want = base();
    want[2] += 1.5;
    want[5] -= 0.75;
    assert_dist(&s.distribution(&LOGITS), &softmax(&want, 1.0), "bias");
}

#[test]
fn logit_bias_of_100_bans_or_forces_a_token() {
    // -100 on the best token (6): it keeps a probability of about e^-100
    // and is never drawn, nor chosen greedily.
    let ban = Penalties {
        logit_bias: vec![(6, -100.0)],
        ..Penalties::none()
    };
    let mut want = base();
    want[6] -= 100.0;
    let mut s = sampler(ban.clone(), 1.0, &[], &[]);
    let got = s.distribution(&LOGITS);
    assert_dist(&got, &softmax(&want, 1.0), "-100");
    assert!(got.iter().find(|c| c.0 == 6).unwrap().1 < 1e-40);
    assert!((0..10_000).all(|_| s.sample(&LOGITS) != 6));
    assert_eq!(sampler(ban, 0.0, &[], &[]).sample(&LOGITS), 0);
    // +100 on the worst token (7): it takes all but about e^-95 of the mass
    // and is always drawn.
    let force = Penalties {
        logit_bias: vec![(7, 100.0)],
        ..Penalties::none()
    };
    let mut want = base();
    want[7] += 100.0;
    let mut s = sampler(force.clone(), 1.0, &[], &[]);
    let got = s.distribution(&LOGITS);
    assert_dist(&got, &softmax(&want, 1.0), "+100");
    assert_eq!(got[0].0, 7);
    assert!(got[1..].iter().map(|c| c.1).sum::<f64>() < 1e-40);
    assert!((0..10_000).all(|_| s.sample(&LOGITS) == 7));
    assert_eq!(sampler(force, 0.0, &[], &[]).sample(&LOGITS), 7);
}
