//! `response_format`: `text`, `json_object` (any JSON object) and
//! `json_schema` (JSON valid against a schema), turned into the grammar the
//! engine decodes under. llama.cpp's form, a `schema` beside
//! `"type": "json_object"`, is accepted too.

use crate::engine::grammar::json_schema::{json_object_grammar, schema_grammar};
use crate::engine::grammar::Compiled;
use crate::server::invalid::Invalid;
use serde_json::Value;
use std::sync::Arc;

const PARAM: &str = "response_format";

/// The grammar `response_format` asks for; None for plain text.
pub fn grammar(format: Option<&Value>) -> Result<Option<Arc<Compiled>>, Invalid> {
    let Some(format) = format else {
        return Ok(None);
    };
    let bad = |msg: String| Invalid::malformed(PARAM, msg);
    let kind = format.get("type").and_then(Value::as_str).ok_or_else(|| {
        bad("response_format needs a `type`: text, json_object or json_schema".into())
    })?;
    let grammar = match kind {
        "text" => return Ok(None),
        "json_object" => match format.get("schema") {
            Some(schema) => schema_grammar(schema),
            None => Ok(json_object_grammar()),
        },
        "json_schema" => {
            let schema = format
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .ok_or_else(|| {
                    bad("response_format of type json_schema needs json_schema.schema".into())
                })?;
            schema_grammar(schema)
        }
        other => {
            return Err(bad(format!(
                "response_format type `{other}` is not one of text, json_object, json_schema"
            )))
        }
    };
    let grammar = grammar.map_err(|e| bad(format!("response_format schema: {e}")))?;
    Ok(Some(Compiled::new(&grammar)))
}
