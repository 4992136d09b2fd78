//! From chat messages (and tools) to the prompt text, through the model's
//! chat template: what /v1/chat/completions and /tokenize share.

use super::tools::{self, ToolFormat, ToolSetup};
use crate::server::error::ApiError;
use crate::server::invalid::Invalid;
use crate::server::state::ServedModel;
use serde_json::{Map, Value};

pub struct ChatOptions<'a> {
    pub tools: Option<&'a [Value]>,
    pub tool_choice: Option<&'a Value>,
    pub parallel_tool_calls: Option<bool>,
    pub kwargs: Map<String, Value>,
    pub add_generation_prompt: bool,
}

pub struct ChatPrompt {
    pub text: String,
    /// The tools the reply may call, when there are any.
    pub tools: Option<ToolSetup>,
}

pub fn render(
    model: &ServedModel,
    messages: Vec<Value>,
    opts: ChatOptions,
) -> Result<ChatPrompt, ApiError> {
    let template = model.template.as_ref().ok_or_else(|| {
        Invalid::malformed(
            "messages",
            format!(
                "the model `{}` has no chat template; use /v1/completions",
                model.name()
            ),
        )
    })?;
    let format = ToolFormat::of(template);
    let tools = tools::parse(
        opts.tools,
        opts.tool_choice,
        opts.parallel_tool_calls,
        format,
    )?;
    let mut messages = normalize_messages(messages)?;
    tools::rewrite_history(&mut messages, format);
    let mut kwargs = opts.kwargs;
    if let Some(t) = &tools {
        t.template_kwargs(&mut kwargs);
        t.describe_in_system(&mut messages);
    }
    let text = template.render(&messages, opts.add_generation_prompt, &kwargs)?;
    Ok(ChatPrompt { text, tools })
}

/// Checks each message and flattens array-of-parts content into the plain
/// string most templates expect (text parts joined by newlines).
fn normalize_messages(messages: Vec<Value>) -> Result<Vec<Value>, Invalid> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            let bad = |message: String| Invalid::malformed("messages", message);
            let obj = m
                .as_object_mut()
                .ok_or_else(|| bad(format!("messages[{i}] must be an object")))?;
            match obj.get("role").and_then(Value::as_str) {
                Some("system" | "user" | "assistant" | "tool" | "developer") => {}
                Some(other) => {
                    return Err(bad(format!(
                        "messages[{i}].role `{other}` is not one of system, user, assistant, tool"
                    )))
                }
                None => return Err(bad(format!("messages[{i}] has no role"))),
            }
            if let Some(Value::Array(parts)) = obj.get("content") {
                let mut texts = Vec::new();
                for (j, part) in parts.iter().enumerate() {
                    match (
                        part.get("type").and_then(Value::as_str),
                        part.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => texts.push(t.to_owned()),
                        (ty, _) => {
                            return Err(bad(format!(
                                "messages[{i}].content[{j}]: only text parts are supported, got {}",
                                ty.unwrap_or("no type")
                            )))
                        }
                    }
                }
                obj.insert("content".into(), Value::String(texts.join("\n")));
            }
            Ok(m)
        })
        .collect()
}
