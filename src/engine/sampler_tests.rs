//! Tests of `sampler.rs`: computed distributions against hand-written
//! f64 references.

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

// ---- Computed distributions against an f64 reference ----

use crate::backend::testing::uniform;

/// Relative tolerance of the comparisons with the reference.
const TOL: f64 = 1e-9;

/// softmax(logits / t) by hand, in f64, over every finite logit.
fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&l| l as f64 / t).collect();
    let max = scaled
        .iter()
        .filter(|l| l.is_finite())
        .fold(f64::NEG_INFINITY, |m, &l| m.max(l));
    let exps: Vec<f64> = scaled
        .iter()
        .map(|&l| if l.is_finite() { (l - max).exp() } else { 0.0 })
        .collect();
    let total: f64 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// Token ids with a finite logit, best first, the lower id first on ties.
fn ranked(logits: &[f32]) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..logits.len() as u32)
        .filter(|&i| logits[i as usize].is_finite())
        .collect();
    ids.sort_by(|&a, &b| {
        logits[b as usize]
            .partial_cmp(&logits[a as usize])
            .unwrap()
            .then(a.cmp(&b))
    });
    ids
}

/// `probs` restricted to `ids` (in that order) and renormalised.
fn restricted(probs: &[f64], ids: &[u32]) -> Vec<(u32, f64)> {
    let mass: f64 = ids.iter().map(|&i| probs[i as usize]).sum();
    ids.iter().map(|&i| (i, probs[i as usize] / mass)).collect()
}

fn assert_dist(got: &[(u32, f64)], want: &[(u32, f64)], what: &str) {
    let ids = |d: &[(u32, f64)]| d.iter().map(|c| c.0).collect::<Vec<_>>();
    assert_eq!(ids(got), ids(want), "{what}: candidates");
    for (&(id, g), &(_, w)) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= TOL * w,
            "{what}: token {id}: got {g:e}, want {w:e}"
        );
    }
    let total: f64 = got.iter().map(|c| c.1).sum();
    assert!((total - 1.0).abs() < 1e-12, "{what}: total {total}");
}

/// The argmax by hand: the first of the highest.
fn argmax_by_hand(logits: &[f32]) -> u32 {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    logits.iter().position(|&l| l == max).unwrap() as u32
}

fn filtered(temperature: f32, top_k: u32, top_p: f32, min_p: f32) -> SamplingParams {
    SamplingParams {
        temperature,
        top_k,
        top_p,
        min_p,
        ..SamplingParams::default()
    }
}

#[test]
fn distribution_is_softmax_of_logits_over_temperature() {
    for (row, &t) in [0.5f32, 1.0, 1.7].iter().enumerate() {
        let mut logits = uniform(300, 10 + row as u64, 12.0);
        logits[7] = f32::NEG_INFINITY;
        let want = restricted(&softmax(&logits, t as f64), &ranked(&logits));
        assert_eq!(want.len(), 299);
        assert_dist(&distribution(&params(t), &logits), &want, &format!("T={t}"));
    }
    // Temperature changes the spread, not the ranking: exact ratios.
    let logits = [1.0f32, 0.0];
    let d = distribution(&params(0.5), &logits);
    assert!((d[0].1 / d[1].1 - 2f64.exp()).abs() < 1e-12 * 2f64.exp());
}

#[test]
fn greedy_is_a_single_candidate_at_the_argmax() {
    let ties = [0.5f32, 3.0, -1.0, 3.0, 3.0];
    for p in [
        params(0.0),
        filtered(1.0, 1, 1.0, 0.0),
        filtered(0.0, 5, 0.5, 0.5),
    ] {
        assert_eq!(distribution(&p, &ties), vec![(1, 1.0)]);
    }
    for seed in 0..50 {
        let logits = uniform(1000, seed, 20.0);
        let want = vec![(argmax_by_hand(&logits), 1.0)];
        assert_eq!(distribution(&params(0.0), &logits), want);
        assert_eq!(distribution(&filtered(1.0, 1, 1.0, 0.0), &logits), want);
    }
}

#[test]
fn top_k_one_samples_exactly_like_greedy() {
    let mut top1 = filtered(1.0, 1, 1.0, 0.0);
    top1.seed = Some(3);
    let mut greedy = params(0.0);
    greedy.seed = Some(3);
    let (mut a, mut b) = (Sampler::new(&top1, &[]), Sampler::new(&greedy, &[]));
    for seed in 0..300 {
        let mut logits = uniform(512, 1000 + seed, 16.0);
        if seed % 3 == 0 {
            // A tie for first place: the lower id wins.
            let hi = argmax_by_hand(&logits) as usize;
            logits[hi / 2] = logits[hi];
        }
        let want = argmax_by_hand(&logits);
        assert_eq!(a.sample(&logits), want);
        assert_eq!(b.sample(&logits), want);
    }
}

#[test]
fn top_k_keeps_exactly_the_k_best_renormalised() {
    let logits = uniform(400, 21, 10.0);
    let probs = softmax(&logits, 0.8f32 as f64);
    let order = ranked(&logits);
    for k in [2u32, 3, 17, 399, 400, 1000] {
        let want = restricted(&probs, &order[..(k as usize).min(400)]);
        let got = distribution(&filtered(0.8, k, 1.0, 0.0), &logits);
        assert_eq!(got.len(), (k as usize).min(400));
        assert_dist(&got, &want, &format!("top_k={k}"));
    }
    // Ties at the cut: exactly k stay, the lower ids.
    let got = distribution(&filtered(1.0, 2, 1.0, 0.0), &[1.0, 2.0, 1.0, 1.0]);
    assert_dist(
        &got,
        &restricted(&softmax(&[1.0, 2.0], 1.0), &[1, 0]),
        "ties",
    );
}

#[test]
fn top_p_keeps_the_smallest_prefix_reaching_p() {
    let logits = uniform(200, 33, 8.0);
    let probs = softmax(&logits, 1.0);
    let order = ranked(&logits);
    for top_p in [0.05f32, 0.3, 0.5, 0.9, 0.99] {
        let mut n = 0;
        let mut acc = 0.0;
        while acc < top_p as f64 {
            acc += probs[order[n] as usize];
            n += 1;
        }
        let want = restricted(&probs, &order[..n]);
        let got = distribution(&filtered(1.0, 0, top_p, 0.0), &logits);
        assert_dist(&got, &want, &format!("top_p={top_p}"));
    }
    // Eight equal logits: each holds exactly 1/8, so 3/8 is reached
    // exactly by the third token, which is kept, and the fourth is not.
    let flat = [0.25f32; 8];
    let third = [(0, 1.0 / 3.0), (1, 1.0 / 3.0), (2, 1.0 / 3.0)];
    assert_dist(
        &distribution(&filtered(1.0, 0, 0.375, 0.0), &flat),
        &third,
        "exact",
    );
    let just_over = filtered(1.0, 0, 0.375f32.next_up(), 0.0);
    assert_eq!(distribution(&just_over, &flat).len(), 4);
    // At least one token stays, however small p.
    for top_p in [0.0f32, 1e-30] {
        let got = distribution(&filtered(1.0, 0, top_p, 0.0), &logits);
        assert_eq!(got, vec![(order[0], 1.0)], "top_p={top_p}");
        assert_eq!(
            distribution(&filtered(1.0, 0, top_p, 0.0), &flat),
            vec![(0, 1.0)]
        );
    }
}

#[test]
fn min_p_keeps_tokens_at_least_min_p_times_the_best() {
    let logits = uniform(300, 44, 9.0);
    for (t, min_p) in [(1.0f32, 0.05f32), (1.0, 0.3), (0.6, 0.1), (1.5, 0.9)] {
        let probs = softmax(&logits, t as f64);
        let best = probs.iter().cloned().fold(0.0, f64::max);
        let keep: Vec<u32> = ranked(&logits)
            .into_iter()
            .filter(|&i| probs[i as usize] >= min_p as f64 * best)
            .collect();
        // No token sits within rounding of the threshold.
        assert!(probs
            .iter()
            .all(|&q| ((q / best) / min_p as f64 - 1.0).abs() > 1e-6));
        let want = restricted(&probs, &keep);
        let got = distribution(&filtered(t, 0, 1.0, min_p), &logits);
        assert_dist(&got, &want, &format!("T={t} min_p={min_p}"));
    }
    // The threshold itself is kept: equal to the best at min_p = 1.
    let got = distribution(&filtered(1.0, 0, 1.0, 1.0), &[1.0, 3.0, 3.0, 2.0]);
    assert_dist(&got, &[(1, 0.5), (2, 0.5)], "min_p=1");
}

/// The filters by hand in the order the module documents: softmax over
/// the finite logits at temperature t; top-k and renormalise; top-p on
/// that; min-p relative to the best; renormalise what is left. Also how
/// many tokens top-k and top-p left.
fn reference(p: &SamplingParams, logits: &[f32]) -> (Vec<(u32, f64)>, usize, usize) {
    let mut order = ranked(logits);
    if p.top_k > 0 {
        order.truncate(p.top_k as usize);
    }
    let probs = restricted(&softmax(logits, p.temperature as f64), &order);
    let mut n = probs.len();
    if p.top_p < 1.0 {
        let mut acc = 0.0;
        n = 0;
        while n < probs.len() && (n == 0 || acc < p.top_p as f64) {
            acc += probs[n].1;
            n += 1;
        }
    }
    let floor = p.min_p as f64 * probs[0].1;
    let ids: Vec<u32> = probs[..n]
        .iter()
        .filter(|c| c.1 >= floor)
        .map(|c| c.0)
        .collect();
    let mass: f64 = ids
        .iter()
        .map(|&i| probs.iter().find(|c| c.0 == i).unwrap().1)
        .sum();
    let dist = probs
        .iter()
        .filter(|c| ids.contains(&c.0))
        .map(|&(i, q)| (i, q / mass))
        .collect();
    (dist, probs.len(), n)
}

#[test]
fn filters_combine_top_k_then_top_p_then_min_p() {
    // Probabilities 0.4, 0.3, 0.2, 0.1. With min_p = 0.45 the first three
    // stay (0.1 < 0.18); top_p = 0.75 needs three of the original mass
    // (0.4 + 0.3 < 0.75), so three stay. Renormalising over min-p's
    // survivors first (vLLM V1's order) would give 0.44 + 0.33 ≥ 0.75
    // and keep two.
    let logits: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|q| q.ln()).collect();
    let got = distribution(&filtered(1.0, 0, 0.75, 0.45), &logits);
    let probs = softmax(&logits, 1.0);
    assert_dist(&got, &restricted(&probs, &[0, 1, 2]), "min_p + top_p");
    // Top-p measures the mass top-k left: 0.4 / 0.7 ≥ 0.5 keeps one token,
    // where 0.4 of the full row would not.
    let got = distribution(&filtered(1.0, 2, 0.5, 0.0), &logits);
    assert_eq!(got, vec![(0, 1.0)]);
    // And on random rows, every combination against the reference.
    let (mut checked, mut top_p_cut, mut min_p_cut) = (0, 0, 0);
    for seed in 0..40u64 {
        let logits = uniform(256, 500 + seed, 10.0);
        for (t, k, top_p, min_p) in [
            (1.0f32, 50u32, 0.9f32, 0.05f32),
            (0.7, 0, 0.8, 0.2),
            (1.3, 20, 0.6, 0.0),
            (0.9, 100, 1.0, 0.1),
            (1.1, 5, 0.95, 0.5),
        ] {
            let p = filtered(t, k, top_p, min_p);
            let (want, after_top_k, after_top_p) = reference(&p, &logits);
            top_p_cut += usize::from(after_top_p < after_top_k);
            min_p_cut += usize::from(want.len() < after_top_p);
            let what = format!("seed {seed} T={t} k={k} p={top_p} min_p={min_p}");
            assert_dist(&distribution(&p, &logits), &want, &what);
            checked += want.len();
        }
    }
    // Each filter did cut on some rows, or the comparison proves little.
    assert!(checked > 2000, "too few candidates checked: {checked}");
    assert!(top_p_cut > 50 && min_p_cut > 50, "{top_p_cut} {min_p_cut}");
}

fn rows(n: usize, vocab: usize, seed: u64) -> Vec<Vec<f32>> {
    (0..n as u64)
        .map(|i| uniform(vocab, seed * 1000 + i, 6.0))
        .collect()
}

#[test]
fn a_seed_fixes_the_token_sequence() {
    let rows = rows(200, 64, 9);
    let run = |seed| {
        let mut p = params(1.0);
        p.seed = Some(seed);
        let mut s = Sampler::new(&p, &[]);
        rows.iter().map(|r| s.sample(r)).collect::<Vec<_>>()
    };
    let a = run(1234);
    assert_eq!(a, run(1234));
    let b = run(1235);
    assert_ne!(a, b);
    // Not a fluke of one position: most positions differ between seeds,
    // and the greedy sequence is neither.
    let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(differ > 100, "only {differ} of 200 positions differ");
    let greedy: Vec<u32> = rows.iter().map(|r| argmax(r)).collect();
    assert_ne!(a, greedy);
}

/// The chi-square value exceeded with probability 0.001, for 1 to 15
/// degrees of freedom.
fn chi2_critical_0_001(df: usize) -> f64 {
    const TABLE: [f64; 15] = [
        10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264,
        32.909, 34.528, 36.123, 37.697,
    ];
    TABLE[df - 1]
}

#[test]
fn draws_follow_the_computed_distribution() {
    const N: usize = 20_000;
    let logits = uniform(16, 77, 4.0);
    for (p, seed) in [
        (params(1.0), 5u64),
        (filtered(0.8, 10, 0.95, 0.0), 6),
        (filtered(1.2, 0, 0.9, 0.2), 7),
    ] {
        let dist = distribution(&p, &logits);
        let mut p = p;
        p.seed = Some(seed);
        let mut s = Sampler::new(&p, &[]);
        let mut counts = vec![0usize; logits.len()];
        for _ in 0..N {
            counts[s.sample(&logits) as usize] += 1;
        }
        let outside: usize = (0..logits.len() as u32)
            .filter(|t| !dist.iter().any(|c| c.0 == *t))
            .map(|t| counts[t as usize])
            .sum();
        assert_eq!(outside, 0, "drew a token outside the distribution");
        let mut chi2 = 0.0;
        for &(t, q) in &dist {
            let expected = q * N as f64;
            assert!(expected >= 5.0, "expected count {expected} too small");
            let d = counts[t as usize] as f64 - expected;
            chi2 += d * d / expected;
        }
        let critical = chi2_critical_0_001(dist.len() - 1);
        assert!(
            chi2 < critical,
            "chi-square {chi2:.2} over {} candidates exceeds {critical}",
            dist.len()
        );
    }
}

/// `choose` as it read before `distribution` was split out of it.
fn choose_unsplit(p: &SamplingParams, rng: &mut Rng, logits: &[f32]) -> u32 {
    if p.is_greedy() {
        return argmax(logits);
    }
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

#[test]
fn seeded_samples_are_those_of_the_unsplit_sampler() {
    let mut rows = rows(300, 300, 4);
    rows[10].iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
    rows[11][3] = f32::NEG_INFINITY;
    rows[12][5] = f32::NAN;
    for (i, mut p) in [
        params(1.0),
        params(0.0),
        filtered(0.7, 40, 0.9, 0.05),
        filtered(1.5, 0, 0.5, 0.0),
        filtered(1.0, 0, 1.0, 0.3),
        filtered(1.0, 1, 1.0, 0.0),
    ]
    .into_iter()
    .enumerate()
    {
        p.seed = Some(100 + i as u64);
        let mut s = Sampler::new(&p, &[]);
        let mut rng = Rng::seeded(100 + i as u64);
        for (j, row) in rows.iter().enumerate() {
            let want = choose_unsplit(&p, &mut rng, row);
            assert_eq!(s.sample(row), want, "params {i}, row {j}");
        }
    }
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
