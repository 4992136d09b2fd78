//! JSON and JSON Schema (draft 2020-12, the subset OpenAI structured
//! outputs and tool parameters use) compiled to grammars.
//!
//! The promise is that what the model writes parses and is valid against
//! the schema. So a keyword this cannot hold the output to is refused with
//! a `SchemaError`, never dropped; where a schema leaves a choice the
//! grammar may take the narrower one:
//!
//! - properties come in the order the schema declares them (serde_json
//!   keeps that order: its `preserve_order` feature is on, through
//!   minijinja), optional ones may be left out, and other keys come after
//!   them;
//! - `additionalProperties` absent means no other keys, as in OpenAI's
//!   strict mode and xgrammar, except on an object with neither
//!   `properties` nor `required`, which would otherwise only allow `{}`;
//! - `oneOf` is `anyOf`: that only one branch matches is not enforced;
//! - `enum` and `const` values are written as serde_json writes them,
//!   compactly;
//! - `format` is an annotation (as the 2020-12 spec has it by default) and
//!   is not checked;
//! - numbers carry at most 16 digits before and after the point and 3 of
//!   exponent (see `json_value`).

use super::json_value::Json;
use super::matcher::{Compiled, Matcher};
use super::rules::{literal, Element, Grammar, GrammarBuilder, RuleId, Seq};
use serde_json::{Map, Value};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at {path})")]
pub struct SchemaError {
    /// Where in the schema, as a JSON pointer fragment: `#/properties/age`.
    pub path: String,
    pub message: String,
}

impl SchemaError {
    fn new(path: &str, message: impl Into<String>) -> Self {
        SchemaError {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, SchemaError>;

/// Schemas nest deeper than any real one; past this a schema is taken to
/// be built to exhaust the server.
const MAX_DEPTH: usize = 64;
/// Rules one schema may add to a grammar (long bounded repetitions, such
/// as `maxLength: 1000000`, are what reaches it).
const MAX_RULES: usize = 100_000;

/// Keywords that constrain nothing.
const ANNOTATIONS: &str = "title description default examples $schema $id $comment deprecated \
    readOnly writeOnly $defs definitions format strict name";

/// Keywords compiled here. `maximum` and `exclusiveMaximum` are among them
/// because they mean nothing to types other than numbers, where they are
/// refused.
const SUPPORTED: &str = "type enum const anyOf oneOf allOf $ref nullable properties required \
    additionalProperties items prefixItems minItems maxItems minLength maxLength minimum \
    exclusiveMinimum maximum exclusiveMaximum";

/// Keywords that imply a type when `type` is absent.
const TYPE_KEYWORDS: &[(&str, &str)] = &[
    ("object", "properties required additionalProperties"),
    ("array", "items prefixItems minItems maxItems"),
    ("string", "minLength maxLength"),
    (
        "number",
        "minimum exclusiveMinimum maximum exclusiveMaximum",
    ),
];

fn listed(list: &str, keyword: &str) -> bool {
    list.split_whitespace().any(|k| k == keyword)
}

fn is_annotation(keyword: &str) -> bool {
    listed(ANNOTATIONS, keyword)
}

/// Sequence matching any JSON value (object, array, string, number, true,
/// false, null).
pub fn any_value(b: &mut GrammarBuilder) -> Seq {
    Json::new(b).value()
}

/// Sequence matching any JSON object.
pub fn any_object(b: &mut GrammarBuilder) -> Seq {
    let mut json = Json::new(b);
    let value = json.value();
    json.object(Vec::new(), Some(value))
}

/// Sequence matching JSON values valid against `schema` (the schema's
/// root; `$ref` resolves against this root).
pub fn schema_seq(b: &mut GrammarBuilder, schema: &Value) -> Result<Seq> {
    Compiler::new(b, schema).schema(schema, "#", 0)
}

/// Any JSON object (`response_format` `json_object`).
pub fn json_object_grammar() -> Grammar {
    let mut b = GrammarBuilder::new();
    let object = any_object(&mut b);
    let root = b.rule(vec![object]);
    match b.build(root) {
        Ok(g) => g,
        // Cannot happen (the tests build it); `{}` is still an object.
        Err(_) => Grammar {
            rules: vec![vec![literal("{}")]],
            root: 0,
        },
    }
}

/// JSON values valid against `schema`, and nothing around them.
pub fn schema_grammar(schema: &Value) -> Result<Grammar> {
    let mut b = GrammarBuilder::new();
    let value = schema_seq(&mut b, schema)?;
    let root = b.rule(vec![value]);
    b.build(root)
        .map_err(|e| SchemaError::new("#", format!("internal grammar error: {e}")))
}

struct Compiler<'a, 'b> {
    json: Json<'b>,
    root: &'a Value,
    /// The rule of each `$ref` target met so far, so that a recursive
    /// schema becomes a recursive rule.
    refs: HashMap<String, RuleId>,
    /// `$ref`s entered since the last `{` or `[`: meeting one again would
    /// be a rule that reaches itself before reading a byte.
    unguarded: Vec<String>,
}

impl<'a, 'b> Compiler<'a, 'b> {
    fn new(b: &'b mut GrammarBuilder, root: &'a Value) -> Self {
        Compiler {
            json: Json::new(b),
            root,
            refs: HashMap::new(),
            unguarded: Vec::new(),
        }
    }

    fn schema(&mut self, schema: &Value, path: &str, depth: usize) -> Result<Seq> {
        if depth > MAX_DEPTH {
            return Err(SchemaError::new(
                path,
                format!("schema nested deeper than {MAX_DEPTH}"),
            ));
        }
        self.budget(path, 0)?;
        let o = match schema {
            Value::Bool(true) => return Ok(self.json.value()),
            Value::Bool(false) => {
                return Err(SchemaError::new(path, "schema `false` allows nothing"))
            }
            Value::Object(o) => o,
            _ => {
                return Err(SchemaError::new(
                    path,
                    "a schema must be an object or a boolean",
                ))
            }
        };
        for k in o.keys() {
            if !is_annotation(k) && !listed(SUPPORTED, k) {
                return Err(SchemaError::new(path, unsupported(k)));
            }
        }
        match o.get("nullable") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                let mut inner = o.clone();
                inner.remove("nullable");
                let value = self.schema(&Value::Object(inner), path, depth + 1)?;
                return Ok(self.json.alt(vec![value, literal("null")]));
            }
            Some(_) => return Err(SchemaError::new(path, "nullable must be a boolean")),
        }
        if let Some(target) = o.get("$ref") {
            if let Some(k) = constraints(o).find(|k| *k != "$ref" && *k != "nullable") {
                return Err(SchemaError::new(
                    path,
                    format!("$ref beside {k} is not supported"),
                ));
            }
            return self.reference(target, path, depth);
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(branches) = o.get(key) {
                return self.branches(o, key, branches, path, depth);
            }
        }
        if o.contains_key("enum") || o.contains_key("const") {
            return self.enumeration(o, path, depth);
        }
        self.typed(o, path, depth)
    }

    fn budget(&self, path: &str, more: usize) -> Result<()> {
        if self.json.added().saturating_add(more) > MAX_RULES {
            return Err(SchemaError::new(
                path,
                format!("schema too large: over {MAX_RULES} grammar rules"),
            ));
        }
        Ok(())
    }

    /// Compiles with no `$ref` unguarded: the caller has read a byte.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = std::mem::take(&mut self.unguarded);
        let out = f(self);
        self.unguarded = saved;
        out
    }

    fn reference(&mut self, target: &Value, path: &str, depth: usize) -> Result<Seq> {
        let Some(r) = target.as_str() else {
            return Err(SchemaError::new(path, "$ref must be a string"));
        };
        let pointer = match r.strip_prefix('#') {
            Some(p) if p.is_empty() || p.starts_with('/') => p,
            _ => {
                return Err(SchemaError::new(
                    path,
                    format!(
                        "$ref {r:?} is not supported: only references into this schema (#/...) are"
                    ),
                ))
            }
        };
        if let Some(&id) = self.refs.get(r) {
            if self.unguarded.iter().any(|u| u == r) {
                return Err(SchemaError::new(
                    path,
                    format!("$ref {r:?} refers to itself without an object or array in between"),
                ));
            }
            return Ok(vec![Element::Rule(id)]);
        }
        let Some(schema) = self.root.pointer(pointer) else {
            return Err(SchemaError::new(
                path,
                format!("$ref {r:?} points at nothing"),
            ));
        };
        let id = self.json.reserve();
        self.refs.insert(r.to_string(), id);
        self.unguarded.push(r.to_string());
        let body = self.schema(schema, r, depth + 1);
        self.unguarded.pop();
        self.json.define(id, vec![body?]);
        Ok(vec![Element::Rule(id)])
    }

    /// `allOf` (of one schema), `anyOf`, `oneOf`. Keywords beside them are
    /// moved into each branch, which means the same as long as no keyword
    /// then meets one it depends on (`additionalProperties` reads
    /// `properties`, `items` reads `prefixItems`) or one of its own name.
    fn branches(
        &mut self,
        o: &Map<String, Value>,
        key: &str,
        branches: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Seq> {
        let branches = match branches.as_array() {
            Some(b) if !b.is_empty() => b,
            _ => {
                return Err(SchemaError::new(
                    path,
                    format!("{key} must be a non-empty array"),
                ))
            }
        };
        if key == "allOf" && branches.len() > 1 {
            return Err(SchemaError::new(
                path,
                "allOf of more than one schema is not supported",
            ));
        }
        let beside: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| *k != key && !is_annotation(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut alternatives = Vec::new();
        for (i, branch) in branches.iter().enumerate() {
            let branch_path = format!("{path}/{key}/{i}");
            let branch = match branch {
                Value::Bool(false) if branches.len() > 1 => continue,
                _ if beside.is_empty() => branch.clone(),
                Value::Bool(true) => Value::Object(beside.clone()),
                Value::Object(b) => Value::Object(merge(&beside, b, key, &branch_path)?),
                _ => branch.clone(),
            };
            alternatives.push(self.schema(&branch, &branch_path, depth + 1)?);
        }
        if alternatives.is_empty() {
            return Err(SchemaError::new(
                path,
                format!("every branch of {key} is false"),
            ));
        }
        Ok(self.json.alt(alternatives))
    }

    /// `enum` and `const`: their values, less those the rest of the
    /// schema refuses (checked by matching each against the rest's own
    /// grammar, so the check is exactly what the grammar would allow).
    fn enumeration(&mut self, o: &Map<String, Value>, path: &str, depth: usize) -> Result<Seq> {
        let values: Vec<&Value> = match (o.get("const"), o.get("enum")) {
            (_, Some(e)) if !e.is_array() => {
                return Err(SchemaError::new(path, "enum must be an array"))
            }
            (Some(c), Some(Value::Array(e))) => e.iter().filter(|v| *v == c).collect(),
            (Some(c), _) => vec![c],
            (None, Some(Value::Array(e))) => e.iter().collect(),
            (None, _) => Vec::new(),
        };
        let rest: Map<String, Value> = o
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "enum" | "const") && !is_annotation(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut texts: Vec<String> = values.into_iter().map(Value::to_string).collect();
        if !rest.is_empty() {
            let mut b = GrammarBuilder::new();
            let mut c = Compiler::new(&mut b, self.root);
            let value = c.schema(&Value::Object(rest), path, depth + 1)?;
            let root = c.json.rule(vec![value]);
            let g = b
                .build(root)
                .map_err(|e| SchemaError::new(path, format!("internal grammar error: {e}")))?;
            let m = Matcher::new(Compiled::new(&g));
            texts.retain(|t| m.matches(t.as_bytes()));
        }
        texts.sort_unstable();
        texts.dedup();
        if texts.is_empty() {
            return Err(SchemaError::new(
                path,
                "no value of enum/const is allowed by the rest of the schema",
            ));
        }
        Ok(self.json.alt(texts.iter().map(|t| literal(t)).collect()))
    }

    fn typed(&mut self, o: &Map<String, Value>, path: &str, depth: usize) -> Result<Seq> {
        let mut types: Vec<&str> = match o.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) if !ts.is_empty() => {
                let ts: Option<Vec<&str>> = ts.iter().map(Value::as_str).collect();
                ts.ok_or_else(|| {
                    SchemaError::new(path, "type must be a string or an array of strings")
                })?
            }
            Some(_) => {
                return Err(SchemaError::new(
                    path,
                    "type must be a string or a non-empty array of strings",
                ))
            }
            None => TYPE_KEYWORDS
                .iter()
                .filter(|(_, keys)| keys.split_whitespace().any(|k| o.contains_key(k)))
                .map(|(t, _)| *t)
                .collect(),
        };
        if types.is_empty() {
            return Ok(self.json.value());
        }
        if types.contains(&"number") {
            types.retain(|t| *t != "integer");
        }
        types.sort_unstable();
        types.dedup();
        let mut alternatives = Vec::new();
        for t in types {
            alternatives.push(match t {
                "string" => self.string(o, path)?,
                "number" => self.number(o, path)?,
                "integer" => self.integer(o, path)?,
                "boolean" => self.json.alt(vec![literal("true"), literal("false")]),
                "null" => literal("null"),
                "object" => self.guarded(|c| c.object(o, path, depth))?,
                "array" => self.guarded(|c| c.array(o, path, depth))?,
                other => return Err(SchemaError::new(path, format!("unknown type {other:?}"))),
            });
        }
        Ok(self.json.alt(alternatives))
    }
}

fn unsupported(keyword: &str) -> String {
    const KNOWN: &str = "pattern multipleOf minProperties maxProperties patternProperties \
        propertyNames dependentRequired uniqueItems contains";
    if listed(KNOWN, keyword) {
        format!("{keyword} is not supported")
    } else {
        format!("unsupported JSON Schema keyword {keyword}")
    }
}

/// The keywords of a schema that constrain.
fn constraints(o: &Map<String, Value>) -> impl Iterator<Item = &str> {
    o.keys().map(String::as_str).filter(|k| !is_annotation(k))
}

/// `beside` moved into one branch of `key` (see `Compiler::branches`).
fn merge(
    beside: &Map<String, Value>,
    branch: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Map<String, Value>> {
    const DEPENDS: &[(&str, &str)] = &[
        ("additionalProperties", "properties"),
        ("items", "prefixItems"),
    ];
    for k in constraints(branch) {
        if beside.contains_key(k) {
            return Err(SchemaError::new(
                path,
                format!("{k} both beside {key} and inside it is not supported"),
            ));
        }
        for &(a, b) in DEPENDS {
            if (k == a && beside.contains_key(b)) || (k == b && beside.contains_key(a)) {
                return Err(SchemaError::new(
                    path,
                    format!("{a} and {b} split between {key} and beside it is not supported"),
                ));
            }
        }
    }
    let mut merged = branch.clone();
    merged.extend(beside.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(merged)
}

/// A property name as a JSON pointer segment.
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[path = "json_schema_types.rs"]
mod types;

#[cfg(test)]
#[path = "json_schema_tests.rs"]
mod tests;
