//! Default sampling from a Hugging Face `generation_config.json` (GGUF
//! files carry none), used for the fields a request leaves out (as vLLM's
//! `--generation-config auto` does).

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
}

impl GenerationDefaults {
    pub fn from_json(v: &Value) -> Self {
        let num = |k: &str| v[k].as_f64().map(|x| x as f32);
        GenerationDefaults {
            temperature: num("temperature"),
            top_p: num("top_p"),
            top_k: v["top_k"].as_u64().map(|k| k as u32),
            min_p: num("min_p"),
            repetition_penalty: num("repetition_penalty"),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == GenerationDefaults::default()
    }
}
