//! From the request's sampling fields to what the engine samples with,
//! every out-of-range value refused by name. `max_tokens` is not settled
//! here: it depends on the prompt and the engine's window, which
//! `resolve.rs` knows; each choice's parameters are made there, whole.

use super::response_format;
use super::types::SamplingFields;
use crate::engine::grammar::Compiled;
use crate::engine::{Penalties, SamplingParams};
use crate::model::generation::GenerationDefaults;
use crate::server::invalid::Invalid;
use std::sync::Arc;

/// Most alternatives a request may ask for per token (vLLM's default cap).
pub const MAX_LOGPROBS: i64 = 20;
/// Most choices per request.
pub const MAX_N: i64 = 16;
/// At most this many `logit_bias` entries (OpenAI's own limit).
pub const MAX_LOGIT_BIAS: usize = 300;
/// Stop strings: at most this many, each at most `MAX_STOP_BYTES` long.
pub const MAX_STOPS: usize = 16;
pub const MAX_STOP_BYTES: usize = 1024;

/// The sampling fields of a request, checked, with the model's
/// generation defaults filled in.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub min_p: f32,
    pub seed: Option<u64>,
    pub penalties: Penalties,
    pub stop: Vec<String>,
    pub ignore_eos: bool,
    pub grammar: Option<Arc<Compiled>>,
    /// Choices per prompt.
    pub n: usize,
    /// What the request asked for; None: the server's default or the
    /// rest of the window.
    pub max_tokens: Option<usize>,
    /// vLLM's `return_tokens_as_token_ids`.
    pub token_ids_as_text: bool,
    /// Answer with server-sent events.
    pub stream: bool,
    /// With `stream`: a last chunk carrying the usage.
    pub include_usage: bool,
    /// Lower runs first.
    pub priority: i32,
}

impl Sampling {
    /// The engine parameters of choice `index`, generating at most
    /// `max_tokens`; each choice's seed is its own.
    pub fn params(
        &self,
        index: usize,
        max_tokens: usize,
        logprobs: Option<usize>,
        prompt_logprobs: Option<usize>,
    ) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            seed: self.seed.map(|s| s.wrapping_add(index as u64)),
            max_tokens,
            penalties: self.penalties.clone(),
            stop: self.stop.clone(),
            ignore_eos: self.ignore_eos,
            logprobs,
            prompt_logprobs,
            grammar: self.grammar.clone(),
        }
    }
}

/// Checks the request's fields, taking the model's generation defaults
/// (its `generation_config.json`) for the sampling fields it leaves out,
/// and `default_priority` (the caller's key's) when it names none.
pub fn validate(
    mut f: SamplingFields,
    defaults: &GenerationDefaults,
    default_priority: i64,
) -> Result<Sampling, Invalid> {
    f.temperature = f.temperature.or(defaults.temperature);
    f.top_p = f.top_p.or(defaults.top_p);
    f.top_k = f.top_k.or(defaults.top_k.map(i64::from));
    f.min_p = f.min_p.or(defaults.min_p);
    f.repetition_penalty = f.repetition_penalty.or(defaults.repetition_penalty);
    let temperature = f.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(Invalid::out_of_range(
            "temperature",
            "between 0 and 2",
            temperature,
        ));
    }
    let top_p = f.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(Invalid::out_of_range("top_p", "in (0, 1]", top_p));
    }
    let top_k = f.top_k.unwrap_or(0);
    if top_k < -1 || top_k > i64::from(u32::MAX) {
        return Err(Invalid::out_of_range(
            "top_k",
            "-1 (off), 0 (off) or a positive count",
            top_k,
        ));
    }
    let min_p = f.min_p.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_p) {
        return Err(Invalid::out_of_range("min_p", "in [0, 1]", min_p));
    }
    let n = f.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(Invalid::out_of_range("n", "between 1 and 16", n));
    }
    let penalties = penalties(&f)?;
    let grammar = response_format::grammar(f.response_format.as_ref())?;
    let max_tokens = match f.max_completion_tokens.or(f.max_tokens) {
        None => None,
        Some(m) if m < 1 => return Err(Invalid::out_of_range("max_tokens", "at least 1", m)),
        Some(m) => Some(usize::try_from(m).unwrap_or(usize::MAX)),
    };
    let priority = f.priority.unwrap_or(default_priority);
    let priority = i32::try_from(priority)
        .map_err(|_| Invalid::out_of_range("priority", "a 32-bit integer", priority))?;
    let stop = f.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOPS {
        return Err(Invalid::TooMany {
            param: "stop",
            what: "stop strings",
            max: MAX_STOPS,
            got: stop.len(),
        });
    }
    if let Some(long) = stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
        return Err(Invalid::out_of_range(
            "stop",
            "at most 1024 bytes per string",
            format!("{} bytes", long.len()),
        ));
    }
    // An empty string would match before the first token: it means nothing.
    let stop: Vec<String> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    Ok(Sampling {
        temperature,
        top_p,
        top_k: top_k.max(0) as u32,
        min_p,
        seed: f.seed.map(|s| s as u64),
        penalties,
        stop,
        ignore_eos: f.ignore_eos.unwrap_or(false),
        grammar,
        n: n as usize,
        max_tokens,
        token_ids_as_text: f.return_tokens_as_token_ids.unwrap_or(false),
        stream: f.stream.unwrap_or(false),
        include_usage: f
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        priority,
    })
}

/// A count of alternatives per token (`logprobs`, `top_logprobs`).
pub fn check_logprobs(k: i64, param: &'static str) -> Result<usize, Invalid> {
    if !(0..=MAX_LOGPROBS).contains(&k) {
        return Err(Invalid::out_of_range(param, "between 0 and 20", k));
    }
    Ok(k as usize)
}

fn penalties(f: &SamplingFields) -> Result<Penalties, Invalid> {
    let presence = f.presence_penalty.unwrap_or(0.0);
    let frequency = f.frequency_penalty.unwrap_or(0.0);
    let repetition = f.repetition_penalty.unwrap_or(1.0);
    for (name, v) in [
        ("presence_penalty", presence),
        ("frequency_penalty", frequency),
    ] {
        if !(-2.0..=2.0).contains(&v) {
            return Err(Invalid::out_of_range(name, "between -2 and 2", v));
        }
    }
    if !(repetition > 0.0 && repetition <= 2.0) {
        return Err(Invalid::out_of_range(
            "repetition_penalty",
            "in (0, 2]",
            repetition,
        ));
    }
    let bias = f.logit_bias.as_ref();
    if let Some(b) = bias.filter(|b| b.len() > MAX_LOGIT_BIAS) {
        return Err(Invalid::TooMany {
            param: "logit_bias",
            what: "logit_bias entries",
            max: MAX_LOGIT_BIAS,
            got: b.len(),
        });
    }
    let mut logit_bias = Vec::new();
    for (key, value) in bias.into_iter().flatten() {
        let token: u32 = key.parse().map_err(|_| {
            Invalid::malformed(
                "logit_bias",
                format!("logit_bias key `{key}` is not a token id"),
            )
        })?;
        let bias = value
            .as_f64()
            .filter(|b| (-100.0..=100.0).contains(b))
            .ok_or_else(|| Invalid::out_of_range("logit_bias", "between -100 and 100", value))?;
        logit_bias.push((token, bias as f32));
    }
    Ok(Penalties {
        presence,
        frequency,
        repetition,
        logit_bias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fields(v: Value) -> SamplingFields {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: Value) -> Result<Sampling, Invalid> {
        validate(fields(v), &GenerationDefaults::default(), 0)
    }

    #[test]
    fn generation_defaults_fill_only_what_the_request_leaves_out() {
        let defaults = GenerationDefaults {
            temperature: Some(0.6),
            top_p: Some(0.9),
            top_k: Some(20),
            min_p: None,
            repetition_penalty: Some(1.1),
        };
        let v = validate(SamplingFields::default(), &defaults, 0).unwrap();
        assert_eq!(v.temperature, 0.6);
        assert_eq!(v.top_p, 0.9);
        assert_eq!(v.top_k, 20);
        assert_eq!(v.min_p, 0.0);
        assert_eq!(v.penalties.repetition, 1.1);

        let asked = fields(json!({"temperature": 0.0, "top_k": -1}));
        let v = validate(asked, &defaults, 0).unwrap();
        assert_eq!(v.temperature, 0.0);
        assert_eq!(v.top_k, 0);
        assert_eq!(v.top_p, 0.9);

        let none = check(json!({})).unwrap();
        assert_eq!(none.temperature, 1.0);
        assert_eq!(none.max_tokens, None);
    }

    /// Every field with a range, just outside it: refused, naming the
    /// field.
    #[test]
    fn every_out_of_range_field_is_refused_by_name() {
        let many_stops: Vec<String> = (0..17).map(|i| i.to_string()).collect();
        let many_biases: serde_json::Map<String, Value> =
            (0..301).map(|i| (i.to_string(), json!(1))).collect();
        let cases = [
            ("temperature", json!(2.01)),
            ("temperature", json!(-0.1)),
            ("top_p", json!(0.0)),
            ("top_p", json!(1.01)),
            ("top_k", json!(-2)),
            ("top_k", json!(1u64 << 33)),
            ("min_p", json!(-0.01)),
            ("min_p", json!(1.5)),
            ("n", json!(0)),
            ("n", json!(17)),
            ("presence_penalty", json!(2.5)),
            ("presence_penalty", json!(-2.01)),
            ("frequency_penalty", json!(-3.0)),
            ("frequency_penalty", json!(2.01)),
            ("repetition_penalty", json!(0.0)),
            ("repetition_penalty", json!(2.01)),
            ("max_tokens", json!(0)),
            ("max_tokens", json!(-5)),
            ("max_completion_tokens", json!(0)),
            ("priority", json!(1i64 << 40)),
            ("priority", json!(-(1i64 << 40))),
            ("stop", json!(many_stops)),
            ("stop", json!("x".repeat(MAX_STOP_BYTES + 1))),
            ("logit_bias", json!(many_biases)),
            ("logit_bias", json!({"x": 1})),
            ("logit_bias", json!({"5": 100.5})),
            ("logit_bias", json!({"5": "high"})),
            ("response_format", json!({"type": "xml"})),
            ("response_format", json!({})),
            ("response_format", json!({"type": "json_schema"})),
        ];
        for (field, value) in cases {
            let e = check(json!({ field: value })).err();
            let param = e.as_ref().map(Invalid::param);
            let want = if field == "max_completion_tokens" {
                "max_tokens"
            } else {
                field
            };
            assert_eq!(param, Some(want), "{field} = {value}: {e:?}");
            let message = e.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(want), "{field}: {message}");
        }
    }

    /// The edges themselves are in range.
    #[test]
    fn the_edges_of_each_range_are_accepted() {
        let edges = json!({
            "temperature": 2.0, "top_p": 1.0, "top_k": -1, "min_p": 1.0, "n": 16,
            "presence_penalty": -2.0, "frequency_penalty": 2.0, "repetition_penalty": 2.0,
            "max_tokens": 1, "priority": i32::MIN, "logit_bias": {"0": -100, "1": 100},
            "stop": ["", "x".repeat(MAX_STOP_BYTES)],
        });
        let s = check(edges).unwrap();
        assert_eq!(s.n, 16);
        assert_eq!(s.priority, i32::MIN);
        assert_eq!(s.stop.len(), 1, "an empty stop string means nothing");
        assert_eq!(s.penalties.logit_bias, [(0, -100.0), (1, 100.0)]);
    }

    #[test]
    fn logprobs_counts_are_bounded() {
        assert_eq!(check_logprobs(20, "logprobs"), Ok(20));
        assert_eq!(
            check_logprobs(21, "top_logprobs").map_err(|e| e.param()),
            Err("top_logprobs")
        );
        assert!(check_logprobs(-1, "logprobs").is_err());
    }

    #[test]
    fn each_choice_gets_its_own_seed_and_the_settled_max_tokens() {
        let s = check(json!({"seed": 7, "temperature": 0.5})).unwrap();
        let (a, b) = (s.params(0, 12, None, None), s.params(1, 12, Some(2), None));
        assert_eq!((a.seed, b.seed), (Some(7), Some(8)));
        assert_eq!((a.max_tokens, b.logprobs), (12, Some(2)));
        assert_eq!(a.temperature, 0.5);
    }
}
