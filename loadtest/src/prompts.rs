//! What the generator sends: synthetic prompts of exact token lengths
//! (token-id arrays, which OpenAI's completions API and llama-server both
//! take), or prompts read from a JSONL file.

use serde_json::Value;

pub enum Prompts {
    /// `len` token ids per prompt, the first `shared` the same for every
    /// request (a common system prompt), the rest unique to each request.
    Synthetic { len: usize, shared: usize },
    /// One JSON object per line with a `prompt` (text or token ids), used
    /// in turn.
    File(Vec<Value>),
}

/// Token ids drawn from here are ordinary words in every common vocabulary.
const FIRST_ID: u64 = 1000;
const ID_RANGE: u64 = 9000;

impl Prompts {
    pub fn read(path: &str) -> Result<Prompts, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let prompts: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                let v: Value =
                    serde_json::from_str(l).map_err(|e| format!("{path}:{}: {e}", i + 1))?;
                v.get("prompt")
                    .cloned()
                    .ok_or_else(|| format!("{path}:{}: no `prompt`", i + 1))
            })
            .collect::<Result<_, _>>()?;
        if prompts.is_empty() {
            return Err(format!("{path}: no prompts"));
        }
        Ok(Prompts::File(prompts))
    }

    /// The prompt of request number `i` of a run seeded with `run`.
    pub fn get(&self, run: u64, i: u64) -> Value {
        match self {
            Prompts::File(all) => all[(i % all.len() as u64) as usize].clone(),
            Prompts::Synthetic { len, shared } => {
                let ids: Vec<u64> = (0..*len as u64)
                    .map(|j| {
                        // The unique part mixes in the request number, so no
                        // two requests share more than `shared` tokens.
                        let salt = if j < *shared as u64 {
                            u64::MAX
                        } else {
                            i ^ (run << 32)
                        };
                        FIRST_ID + mix(salt, j) % ID_RANGE
                    })
                    .collect();
                Value::from(ids)
            }
        }
    }
}

/// SplitMix64 of (a, b): cheap, well spread, deterministic.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_have_their_length_and_share_only_the_prefix() {
        let p = Prompts::Synthetic { len: 20, shared: 8 };
        let (a, b) = (p.get(0, 1), p.get(0, 2));
        let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
        assert_eq!(a.len(), 20);
        assert_eq!(a[..8], b[..8]);
        assert_ne!(a[8..], b[8..]);
        assert_eq!(p.get(0, 1), p.get(0, 1), "deterministic");
        assert_ne!(p.get(1, 1), p.get(0, 1), "another run, other prompts");
    }
}
