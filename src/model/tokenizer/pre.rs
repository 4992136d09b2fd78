//! The byte-level BPE pre-tokenizers named by `tokenizer.ggml.pre`, with
//! the flags llama.cpp's `llama_vocab::impl::load` sets alongside each.

use super::split::Rule;

const GPT2: &[Rule] = &[Rule::Gpt2];
const LLAMA3: &[Rule] = &[Rule::Llama3 {
    max_digits: 3,
    marks: false,
}];
const QWEN2: &[Rule] = &[Rule::Llama3 {
    max_digits: 1,
    marks: false,
}];
const QWEN35: &[Rule] = &[Rule::Llama3 {
    max_digits: 1,
    marks: true,
}];
const STARCODER: &[Rule] = &[Rule::EachNumber, Rule::Gpt2];
const FALCON: &[Rule] = &[
    Rule::PunctRun { backtick: true },
    Rule::Gpt2,
    Rule::AsciiDigits3,
];
const DEFAULT: &[Rule] = &[
    Rule::PunctRun { backtick: false },
    Rule::Gpt2,
    Rule::NumberRun,
    Rule::AsciiDigits3,
];

/// A byte-level BPE pre-tokenizer and the vocabulary flags that go with it.
#[derive(Clone, Copy, Debug)]
pub struct PreTokenizer {
    pub rules: &'static [Rule],
    /// A whole pre-tokenized word that is a token is taken as is.
    pub ignore_merges: bool,
    /// `clean_up_tokenization_spaces` when detokenizing.
    pub clean_spaces: bool,
    /// Default of `add_bos_token` when the file does not say.
    pub add_bos: bool,
    /// The model has no BOS token unless the file names one.
    pub no_bos: bool,
}

impl PreTokenizer {
    const fn new(rules: &'static [Rule]) -> Self {
        PreTokenizer {
            rules,
            ignore_merges: false,
            clean_spaces: true,
            add_bos: false,
            no_bos: false,
        }
    }

    const fn unclean(mut self) -> Self {
        self.clean_spaces = false;
        self
    }

    const fn ignore_merges(mut self) -> Self {
        self.ignore_merges = true;
        self
    }

    const fn add_bos(mut self) -> Self {
        self.add_bos = true;
        self
    }

    const fn no_bos(mut self) -> Self {
        self.no_bos = true;
        self
    }

    /// The pre-tokenizer of a `gpt2`-model vocabulary; `None` (absent key)
    /// is llama.cpp's `default`. `None` back for a name this crate does not
    /// implement, which includes the names llama.cpp does not know.
    pub fn by_name(name: Option<&str>) -> Option<Self> {
        let Some(name) = name else {
            return Some(Self::new(DEFAULT));
        };
        let p = Self::new;
        Some(match name {
            "default" => p(DEFAULT),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => p(LLAMA3).ignore_merges().add_bos(),
            "dbrx" | "smaug-bpe" => p(LLAMA3),
            "chatglm-bpe" => p(LLAMA3).no_bos(),
            "glm4" | "glm5" => p(LLAMA3).no_bos().ignore_merges(),
            "falcon" => p(FALCON),
            "gpt-2" | "phi-2" | "gigachat" | "a.x-4.0" | "mellum" | "mpt" | "olmo" | "jais"
            | "exaone4" => p(GPT2),
            "trillion" | "granite-docling" => p(GPT2).unclean(),
            "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
                p(STARCODER)
            }
            "command-r" | "smollm" => p(STARCODER).unclean(),
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open"
            | "grok-2" => p(QWEN2).unclean(),
            "stablelm2" | "megrez" => p(QWEN2),
            "qwen35" => p(QWEN35).unclean(),
            _ => return None,
        })
    }
}
