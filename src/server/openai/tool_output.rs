//! Reading tool calls out of what the model wrote, at the end of a
//! request or as its text streams in.

use super::tools::ToolFormat;
use serde_json::Value;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments object as JSON text, as OpenAI sends it.
    pub arguments: String,
}

/// A reply split into what it says and what it calls.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Answer {
    pub content: String,
    pub calls: Vec<ToolCall>,
}

/// Splits a whole reply. Text that does not hold well-formed calls is all
/// content: a reply cut short by max_tokens stays readable.
pub fn parse(text: &str, format: ToolFormat, ids: &mut impl FnMut() -> String) -> Answer {
    let plain = || Answer {
        content: text.to_owned(),
        calls: Vec::new(),
    };
    match format {
        ToolFormat::Generic => {
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                return plain();
            };
            if let Some(r) = v.get("response").and_then(Value::as_str) {
                return Answer {
                    content: r.to_owned(),
                    calls: Vec::new(),
                };
            }
            let Some(list) = v.get("tool_calls").and_then(Value::as_array) else {
                return plain();
            };
            match list
                .iter()
                .map(|c| call(c, ids))
                .collect::<Option<Vec<_>>>()
            {
                Some(calls) if !calls.is_empty() => Answer {
                    content: String::new(),
                    calls,
                },
                _ => plain(),
            }
        }
        ToolFormat::Hermes => {
            let Some(start) = text.find(OPEN) else {
                return plain();
            };
            let mut calls = Vec::new();
            let mut rest = &text[start..];
            while let Some(after) = rest.strip_prefix(OPEN) {
                let (body, next) = match after.find(CLOSE) {
                    Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
                    None => (after, ""),
                };
                let parsed = serde_json::from_str::<Value>(body.trim())
                    .ok()
                    .and_then(|v| call(&v, ids));
                match parsed {
                    Some(c) => calls.push(c),
                    None => return plain(),
                }
                rest = next.trim_start();
            }
            if !rest.is_empty() {
                return plain();
            }
            Answer {
                content: text[..start].trim_end().to_owned(),
                calls,
            }
        }
    }
}

/// `{"name": …, "arguments": {…}}` (Hermes and llama.cpp also write
/// `parameters`).
fn call(v: &Value, ids: &mut impl FnMut() -> String) -> Option<ToolCall> {
    let name = v.get("name")?.as_str()?;
    let args = v.get("arguments").or_else(|| v.get("parameters"))?;
    let arguments = match args {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(ToolCall {
        id: ids(),
        name: name.to_owned(),
        arguments,
    })
}

/// Decides, as text streams in, what can go out as content now. Hermes
/// replies stream until `<tool_call>` (a possible beginning of it is held
/// back); generic replies are JSON to be read whole, so nothing goes out
/// before the end.
pub struct Splitter {
    format: ToolFormat,
    text: String,
    /// Bytes of `text` already sent as content.
    sent: usize,
    /// A call has begun: the rest is held for the end.
    calling: bool,
}

impl Splitter {
    pub fn new(format: ToolFormat) -> Self {
        Splitter {
            format,
            text: String::new(),
            sent: 0,
            calling: false,
        }
    }

    /// Content that may be sent now.
    pub fn push(&mut self, piece: &str) -> String {
        self.text.push_str(piece);
        if self.format == ToolFormat::Generic || self.calling {
            return String::new();
        }
        let pending = &self.text[self.sent..];
        let until = match pending.find(OPEN) {
            Some(k) => {
                self.calling = true;
                k
            }
            None => pending.len() - partial_suffix(pending, OPEN),
        };
        let out = pending[..until].to_owned();
        self.sent += until;
        out
    }

    /// At the end: the content not yet sent, and the calls.
    pub fn finish(self, ids: &mut impl FnMut() -> String) -> Answer {
        let mut whole = parse(&self.text, self.format, ids);
        if whole.calls.is_empty() {
            // Plain text (a generic reply's `response` included, which
            // nothing was sent of).
            if self.sent > 0 {
                whole.content = self.text[self.sent..].to_owned();
            }
        } else {
            // The content is a prefix of the text, trimmed: what is left
            // of it past what went out.
            whole.content = whole
                .content
                .get(self.sent..)
                .unwrap_or_default()
                .to_owned();
        }
        whole
    }
}

/// The length of the longest suffix of `text` that begins `tag`.
fn partial_suffix(text: &str, tag: &str) -> usize {
    (1..tag.len().min(text.len() + 1))
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && tag.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
#[path = "tool_output_tests.rs"]
mod tests;
