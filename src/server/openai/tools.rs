//! `tools` and `tool_choice`: what the model is told about the functions
//! it may call, and the grammar that holds it to calling them when it
//! must.
//!
//! Two conventions. A template that writes `<tool_call>` (Hermes, as Qwen
//! 2.5 and 3 do) is given the tools itself and the model answers in its
//! own markup: free text unless a call is required, then a grammar over
//! `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`. Any other
//! template is told about the tools in its system message and answers in
//! JSON, always under a grammar: `{"tool_calls": [{"name", "arguments"}]}`
//! or, when it may choose to answer, `{"response": "…"}` (llama.cpp's
//! generic format). Either way, past turns with tool calls and tool
//! results are rewritten into what the template can show.

use crate::engine::grammar::json_schema::schema_seq;
use crate::engine::grammar::{literal, seq, Compiled, GrammarBuilder};
use crate::model::chat_template::ChatTemplate;
use crate::server::error::ApiError;
use crate::server::invalid::Invalid;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    /// As the request gave it (`{"type": "function", "function": …}`).
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// Never call a tool.
    None,
    /// Call tools or answer, as the model chooses.
    Auto,
    /// Call at least one tool.
    Required,
    /// Call this tool.
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    Hermes,
    Generic,
}

impl ToolFormat {
    pub fn of(template: &ChatTemplate) -> Self {
        if template.source().contains("<tool_call>") {
            ToolFormat::Hermes
        } else {
            ToolFormat::Generic
        }
    }
}

/// The tools of one request, once checked.
#[derive(Debug, Clone)]
pub struct ToolSetup {
    pub tools: Vec<Tool>,
    pub choice: ToolChoice,
    pub parallel: bool,
    pub format: ToolFormat,
}

fn bad(msg: impl Into<String>, param: &'static str) -> Invalid {
    Invalid::malformed(param, msg)
}

/// Checks `tools`, `tool_choice` and `parallel_tool_calls`. None when no
/// tool may be called (none given, or `tool_choice` is `none`).
pub fn parse(
    tools: Option<&[Value]>,
    choice: Option<&Value>,
    parallel: Option<bool>,
    format: ToolFormat,
) -> Result<Option<ToolSetup>, Invalid> {
    let mut parsed = Vec::new();
    for (i, t) in tools.unwrap_or_default().iter().enumerate() {
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(bad(format!("tools[{i}].type must be `function`"), "tools"));
        }
        let f = t
            .get("function")
            .ok_or_else(|| bad(format!("tools[{i}] has no `function`"), "tools"))?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(bad(
                format!("tools[{i}].function.name must be 1 to 64 letters, digits, `_` or `-`, got `{name}`"),
                "tools",
            ));
        }
        if parsed.iter().any(|p: &Tool| p.name == name) {
            return Err(bad(format!("two tools are named `{name}`"), "tools"));
        }
        let parameters = f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        parsed.push(Tool {
            name: name.to_owned(),
            parameters,
            raw: t.clone(),
        });
    }
    let choice = match choice {
        None => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(
                    format!("tool_choice `{other}` is not none, auto, required or a function"),
                    "tool_choice",
                ))
            }
        },
        Some(v) => {
            let name = v
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(
                        "tool_choice must be a string or {\"type\": \"function\", \"function\": {\"name\": …}}",
                        "tool_choice",
                    )
                })?;
            if !parsed.iter().any(|t| t.name == name) {
                return Err(bad(
                    format!("tool_choice names `{name}`, which is not among the tools"),
                    "tool_choice",
                ));
            }
            ToolChoice::Named(name.to_owned())
        }
    };
    if parsed.is_empty() {
        return match choice {
            ToolChoice::None | ToolChoice::Auto => Ok(None),
            _ => Err(bad(
                "tool_choice asks for a tool call but no tools were given",
                "tool_choice",
            )),
        };
    }
    if choice == ToolChoice::None {
        return Ok(None);
    }
    Ok(Some(ToolSetup {
        tools: parsed,
        choice,
        parallel: parallel.unwrap_or(true),
        format,
    }))
}

impl ToolSetup {
    /// The tools a call may name.
    fn callable(&self) -> impl Iterator<Item = &Tool> {
        self.tools.iter().filter(|t| match &self.choice {
            ToolChoice::Named(n) => &t.name == n,
            _ => true,
        })
    }

    /// Template variables: Hermes templates render the tools themselves.
    pub fn template_kwargs(&self, kwargs: &mut serde_json::Map<String, Value>) {
        if self.format == ToolFormat::Hermes {
            let raw: Vec<Value> = self.tools.iter().map(|t| t.raw.clone()).collect();
            kwargs.insert("tools".into(), Value::Array(raw));
        }
    }

    /// For the generic format, the system message that explains the tools
    /// and the JSON to answer in.
    pub fn describe_in_system(&self, messages: &mut Vec<Value>) {
        if self.format != ToolFormat::Generic {
            return;
        }
        let tools: Vec<Value> = self
            .callable()
            .map(|t| {
                let f = &t.raw["function"];
                json!({"name": t.name, "description": f.get("description"), "parameters": t.parameters})
            })
            .collect();
        let answer = if self.choice == ToolChoice::Auto {
            "To call tools, reply with {\"tool_calls\": [{\"name\": <tool name>, \"arguments\": <arguments object>}]}; to answer without a tool, reply with {\"response\": <your answer>}."
        } else {
            "Reply with {\"tool_calls\": [{\"name\": <tool name>, \"arguments\": <arguments object>}]}."
        };
        let text = format!(
            "You can call these tools:\n{}\n{answer} Reply with JSON only.",
            serde_json::to_string_pretty(&tools).unwrap_or_default()
        );
        match messages.first_mut() {
            Some(m) if m.get("role").and_then(Value::as_str) == Some("system") => {
                let old = m.get("content").and_then(Value::as_str).unwrap_or_default();
                m["content"] = Value::String(format!("{old}\n\n{text}"));
            }
            _ => messages.insert(0, json!({"role": "system", "content": text})),
        }
    }

    /// The grammar the answer must match; None when the model answers
    /// freely and calls are recognised afterwards.
    pub fn grammar(&self) -> Result<Option<Arc<Compiled>>, ApiError> {
        if self.format == ToolFormat::Hermes && self.choice == ToolChoice::Auto {
            return Ok(None);
        }
        let schema_err = |e: crate::engine::grammar::json_schema::SchemaError| {
            bad(format!("a tool's parameters: {e}"), "tools")
        };
        let mut b = GrammarBuilder::new();
        // One call: fixed spacing around the arguments, each tool's
        // parameters compiled as a schema of its own (its `$ref`s resolve
        // within it).
        let mut calls = Vec::new();
        for t in self.callable() {
            let name = serde_json::to_string(&t.name).unwrap_or_default();
            calls.push(seq([
                literal(&format!("{{\"name\": {name}, \"arguments\": ")),
                schema_seq(&mut b, &t.parameters).map_err(schema_err)?,
                literal("}"),
            ]));
        }
        let call = b.alt(calls);
        // A named choice asks for that call, once (as vLLM reads it).
        let parallel = self.parallel && !matches!(self.choice, ToolChoice::Named(_));
        let root = match self.format {
            ToolFormat::Hermes => {
                let one = seq([literal("<tool_call>\n"), call, literal("\n</tool_call>")]);
                let more = if parallel {
                    b.star(seq([literal("\n"), one.clone()]))
                } else {
                    Vec::new()
                };
                b.rule(vec![seq([one, more])])
            }
            ToolFormat::Generic => {
                let more = if parallel {
                    b.star(seq([literal(", "), call.clone()]))
                } else {
                    Vec::new()
                };
                let list = seq([literal("{\"tool_calls\": ["), call, more, literal("]}")]);
                let mut answers = vec![list];
                if self.choice == ToolChoice::Auto {
                    let text =
                        schema_seq(&mut b, &json!({"type": "string"})).map_err(schema_err)?;
                    answers.push(seq([literal("{\"response\": "), text, literal("}")]));
                }
                b.rule(answers)
            }
        };
        let grammar = b
            .build(root)
            .map_err(|e| ApiError::Internal(format!("tool grammar: {e}")))?;
        Ok(Some(Compiled::new(&grammar)))
    }
}

/// Rewrites past turns for the template: tool-call arguments given as
/// JSON strings (OpenAI's wire form) become objects (what templates
/// print); for the generic format, assistant tool calls become the JSON the
/// model writes and tool results become user turns, llama.cpp's way of
/// showing them to templates that know neither.
pub fn rewrite_history(messages: &mut [Value], format: ToolFormat) {
    for m in messages.iter_mut() {
        if let Some(calls) = m.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for c in calls.iter_mut() {
                if let Some(args) = c.pointer_mut("/function/arguments") {
                    if let Some(parsed) = args.as_str().and_then(|s| serde_json::from_str(s).ok()) {
                        *args = parsed;
                    }
                }
            }
        }
        if format != ToolFormat::Generic {
            continue;
        }
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role == "assistant" {
            if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|c| json!({"name": c.pointer("/function/name"), "arguments": c.pointer("/function/arguments")}))
                    .collect();
                let text = json!({"tool_calls": calls}).to_string();
                *m = json!({"role": "assistant", "content": text});
            }
        } else if role == "tool" {
            let content = m.get("content").cloned().unwrap_or(Value::Null);
            let id = m.get("tool_call_id").cloned().unwrap_or(Value::Null);
            let text =
                json!({"tool_response": {"tool_call_id": id, "content": content}}).to_string();
            *m = json!({"role": "user", "content": text});
        }
    }
}

#[cfg(test)]
#[path = "tools_tests.rs"]
mod tests;
