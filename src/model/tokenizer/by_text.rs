//! The tokens llama.cpp recognises by their text rather than by metadata:
//! end of turn, end of message, the fill-in-the-middle tokens, and the set
//! of tokens that end generation.

use super::fxhash::FxMap;
use super::ids::{Ids, EOM, EOS, EOT, FIM_MID, FIM_PAD, FIM_PRE, FIM_REP, FIM_SEP, FIM_SUF};
use super::{attr, Token};

/// Token texts that end generation (llama.cpp's list in `load`).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// The tokens llama.cpp recognises by their text: EOT, EOM and FIM ids the
/// file leaves unset, "unused" control tokens, and the end-of-generation
/// set. Returns that set, ascending.
///
/// Where several texts of one list are in the vocabulary, llama.cpp takes
/// whichever its hash map yields first; the earliest in the list is taken
/// here. That agrees with llama.cpp on Llama 3 (`<|eot_id|>`), Qwen
/// (`<|im_end|>`) and Phi-3 (`<|end|>`), not on SmolLM2 (llama.cpp picks
/// `<|endoftext|>`, here `<|im_end|>`). For EOT that changes only the id:
/// every EOT text ends generation anyway. A vocabulary with two FIM
/// pad/repository/separator candidates could see the other one of them in
/// the end-of-generation set.
pub(super) fn find_by_text(
    tokens: &mut [Token],
    token_to_id: &FxMap<Box<str>, u32>,
    ids: &mut Ids,
) -> Vec<u32> {
    // One entry per distinct text, as llama.cpp walks its text → id map.
    let mut entries: Vec<(u32, &str)> = token_to_id.iter().map(|(t, &i)| (i, &**t)).collect();
    entries.sort_unstable();
    let set_control = |tokens: &mut [Token], id: u32| tokens[id as usize].attr |= attr::CONTROL;

    for (slot, texts) in [
        (EOT, EOT_TEXTS),
        (EOM, EOM_TEXTS),
        (FIM_PRE, FIM_PRE_TEXTS),
        (FIM_SUF, FIM_SUF_TEXTS),
        (FIM_MID, FIM_MID_TEXTS),
        (FIM_PAD, FIM_PAD_TEXTS),
        (FIM_REP, FIM_REP_TEXTS),
        (FIM_SEP, FIM_SEP_TEXTS),
    ] {
        if ids.0[slot].is_none() {
            if let Some(&id) = texts.iter().find_map(|t| token_to_id.get(*t)) {
                ids.0[slot] = Some(id);
                set_control(tokens, id);
            }
        }
    }
    for &(id, text) in &entries {
        let t = &mut tokens[id as usize];
        if t.attr & attr::CONTROL != 0 && text.contains("unused") {
            t.attr |= attr::UNUSED;
        }
    }

    let mut eog: Vec<u32> = [ids.0[FIM_PAD], ids.0[FIM_REP], ids.0[FIM_SEP]]
        .into_iter()
        .flatten()
        .collect();
    for &(id, text) in &entries {
        if EOG_TEXTS.contains(&text) {
            eog.push(id);
            set_control(tokens, id);
        }
        if matches!(
            text,
            "<|channel|>" | "<|message|>" | "<|start|>" | "<|constrain|>"
        ) {
            tokens[id as usize].attr = attr::USER_DEFINED;
        }
    }
    eog.extend([ids.0[EOS], ids.0[EOT], ids.0[EOM]].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();

    // gpt-oss and solar-open: `<|end|>` ends a message, not the generation.
    let has = |tokens: &[Token], eog: &[u32], texts: &[&str]| {
        eog.iter()
            .copied()
            .find(|&i| texts.contains(&&*tokens[i as usize].text))
    };
    if let Some(end) = has(tokens, &eog, &["<|end|>"]) {
        let ret = has(tokens, &eog, &["<|return|>"]).is_some();
        let call = has(tokens, &eog, &["<|call|>", "<|calls|>"]).is_some();
        let flush = has(tokens, &eog, &["<|flush|>"]).is_some();
        if call && (ret || flush) {
            eog.retain(|&i| i != end);
            tokens[end as usize].attr = attr::USER_DEFINED;
        }
    }
    // gemma4 and plamo: `</s>` is a normal token there.
    if has(tokens, &eog, &["<|tool_response>", "<|plamo:eos|>"]).is_some() {
        if let Some(s) = has(tokens, &eog, &["</s>"]) {
            eog.retain(|&i| i != s);
            tokens[s as usize].attr = attr::NORMAL;
        }
    }
    eog
}
