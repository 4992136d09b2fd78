//! From the request's sampling fields to the engine's parameters, with
//! every out-of-range value refused by name.

use super::response_format;
use super::types::SamplingFields;
use crate::engine::{Penalties, SamplingParams};
use crate::model::hf::GenerationDefaults;
use crate::server::error::ApiError;
use crate::server::state::ServedModel;

/// Most alternatives a request may ask for per token (vLLM's default cap).
pub const MAX_LOGPROBS: i64 = 20;
/// Most choices per request.
pub const MAX_N: i64 = 16;
/// At most this many `logit_bias` entries (OpenAI's own limit).
pub const MAX_LOGIT_BIAS: usize = 300;
/// Stop strings: at most 16, each at most this many bytes.
pub const MAX_STOP_BYTES: usize = 1024;

pub struct Validated {
    pub params: SamplingParams,
    pub n: usize,
    pub token_ids_as_text: bool,
    /// None: the rest of the context window, per prompt.
    pub max_tokens: Option<usize>,
    /// Answer with server-sent events.
    pub stream: bool,
    /// With `stream`: a last chunk carrying the usage.
    pub include_usage: bool,
    /// Lower runs first.
    pub priority: i32,
}

impl Validated {
    /// The engine parameters for choice `index` of a prompt of
    /// `prompt_len`. Without max_tokens: the server's default, never past
    /// the context window (or the KV cache, if smaller), else the rest of
    /// the window.
    pub fn params_for(
        &self,
        index: usize,
        prompt_len: usize,
        model: &ServedModel,
    ) -> SamplingParams {
        let mut p = self.params.clone();
        p.seed = p.seed.map(|s| s.wrapping_add(index as u64));
        // The window is the context, or the whole KV cache if smaller.
        let info = model.engine.info();
        let window = info.context_length.min(info.kv_tokens);
        let rest = window.saturating_sub(prompt_len).max(1);
        p.max_tokens = match (self.max_tokens, model.default_max_tokens) {
            (Some(m), _) => m,
            (None, Some(d)) => d.min(rest),
            (None, None) => rest,
        };
        p
    }
}

/// Validates the request's fields, taking the model's generation defaults
/// (its `generation_config.json`) for the sampling fields it leaves out.
pub fn validate(
    mut f: SamplingFields,
    defaults: &GenerationDefaults,
) -> Result<Validated, ApiError> {
    f.temperature = f.temperature.or(defaults.temperature);
    f.top_p = f.top_p.or(defaults.top_p);
    f.top_k = f.top_k.or(defaults.top_k.map(i64::from));
    f.min_p = f.min_p.or(defaults.min_p);
    f.repetition_penalty = f.repetition_penalty.or(defaults.repetition_penalty);
    let temperature = f.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) || temperature.is_nan() {
        return Err(ApiError::bad(
            format!("temperature must be between 0 and 2, got {temperature}"),
            "temperature",
        ));
    }
    let top_p = f.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::bad(
            format!("top_p must be in (0, 1], got {top_p}"),
            "top_p",
        ));
    }
    let top_k = f.top_k.unwrap_or(0);
    if top_k < -1 {
        return Err(ApiError::bad(
            format!("top_k must be -1 (off), 0 (off) or positive, got {top_k}"),
            "top_k",
        ));
    }
    let min_p = f.min_p.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&min_p) {
        return Err(ApiError::bad(
            format!("min_p must be in [0, 1], got {min_p}"),
            "min_p",
        ));
    }
    let n = f.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(ApiError::bad(
            format!("n must be between 1 and {MAX_N}, got {n}"),
            "n",
        ));
    }
    let penalties = penalties(&f)?;
    let grammar = response_format::grammar(f.response_format.as_ref())?;
    let max_tokens = match f.max_completion_tokens.or(f.max_tokens) {
        None => None,
        Some(m) if m < 1 => {
            return Err(ApiError::bad(
                format!("max_tokens must be at least 1, got {m}"),
                "max_tokens",
            ))
        }
        Some(m) => Some(m as usize),
    };
    let priority = f
        .priority
        .unwrap_or_else(crate::server::auth::default_priority);
    let priority = i32::try_from(priority).map_err(|_| {
        ApiError::bad(
            format!("priority must fit in 32 bits, got {priority}"),
            "priority",
        )
    })?;
    let stop = f.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > 16 {
        return Err(ApiError::bad("at most 16 stop strings are allowed", "stop"));
    }
    if stop.iter().any(|s| s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::bad(
            format!("a stop string may be at most {MAX_STOP_BYTES} bytes long"),
            "stop",
        ));
    }
    // An empty string would match before the first token: it means nothing.
    let stop: Vec<String> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    Ok(Validated {
        params: SamplingParams {
            temperature,
            top_p,
            top_k: top_k.max(0) as u32,
            min_p,
            seed: f.seed.map(|s| s as u64),
            max_tokens: 0,
            penalties,
            stop,
            ignore_eos: f.ignore_eos.unwrap_or(false),
            logprobs: None,
            prompt_logprobs: None,
            grammar,
        },
        n: n as usize,
        token_ids_as_text: f.return_tokens_as_token_ids.unwrap_or(false),
        max_tokens,
        stream: f.stream.unwrap_or(false),
        include_usage: f
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        priority,
    })
}

pub fn check_logprobs(k: i64, param: &'static str) -> Result<usize, ApiError> {
    if !(0..=MAX_LOGPROBS).contains(&k) {
        return Err(ApiError::bad(
            format!("{param} must be between 0 and {MAX_LOGPROBS}, got {k}"),
            param,
        ));
    }
    Ok(k as usize)
}

fn penalties(f: &SamplingFields) -> Result<Penalties, ApiError> {
    let presence = f.presence_penalty.unwrap_or(0.0);
    let frequency = f.frequency_penalty.unwrap_or(0.0);
    let repetition = f.repetition_penalty.unwrap_or(1.0);
    for (name, v) in [
        ("presence_penalty", presence),
        ("frequency_penalty", frequency),
    ] {
        if !(-2.0..=2.0).contains(&v) {
            return Err(ApiError::bad(
                format!("{name} must be between -2 and 2, got {v}"),
                name,
            ));
        }
    }
    if !(repetition > 0.0 && repetition <= 2.0) {
        return Err(ApiError::bad(
            format!("repetition_penalty must be in (0, 2], got {repetition}"),
            "repetition_penalty",
        ));
    }
    let mut logit_bias = Vec::new();
    if f.logit_bias
        .as_ref()
        .is_some_and(|b| b.len() > MAX_LOGIT_BIAS)
    {
        return Err(ApiError::bad(
            format!("logit_bias may hold at most {MAX_LOGIT_BIAS} entries"),
            "logit_bias",
        ));
    }
    for (key, value) in f.logit_bias.iter().flatten() {
        let token: u32 = key.parse().map_err(|_| {
            ApiError::bad(
                format!("logit_bias key `{key}` is not a token id"),
                "logit_bias",
            )
        })?;
        let bias = value
            .as_f64()
            .filter(|b| (-100.0..=100.0).contains(b))
            .ok_or_else(|| {
                ApiError::bad(
                    format!("logit_bias for {key} must be a number between -100 and 100"),
                    "logit_bias",
                )
            })?;
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

    #[test]
    fn generation_defaults_fill_only_what_the_request_leaves_out() {
        let defaults = GenerationDefaults {
            temperature: Some(0.6),
            top_p: Some(0.9),
            top_k: Some(20),
            min_p: None,
            repetition_penalty: Some(1.1),
        };
        let v = validate(SamplingFields::default(), &defaults).unwrap();
        assert_eq!(v.params.temperature, 0.6);
        assert_eq!(v.params.top_p, 0.9);
        assert_eq!(v.params.top_k, 20);
        assert_eq!(v.params.min_p, 0.0);
        assert_eq!(v.params.penalties.repetition, 1.1);

        let asked = SamplingFields {
            temperature: Some(0.0),
            top_k: Some(-1),
            ..SamplingFields::default()
        };
        let v = validate(asked, &defaults).unwrap();
        assert_eq!(v.params.temperature, 0.0);
        assert_eq!(v.params.top_k, 0);
        assert_eq!(v.params.top_p, 0.9);

        let none = validate(SamplingFields::default(), &GenerationDefaults::default()).unwrap();
        assert_eq!(none.params.temperature, 1.0);
    }
}
