//! The keywords of each type: strings, numbers, objects, arrays.

use super::{pointer_escape, Compiler, Result, SchemaError};
use crate::engine::grammar::json_value::{Json, Member};
use crate::engine::grammar::rules::Seq;
use serde_json::{Map, Value};

impl Compiler<'_, '_> {
    pub(super) fn string(&mut self, o: &Map<String, Value>, path: &str) -> Result<Seq> {
        let min = count(o, "minLength", path)?.unwrap_or(0);
        let max = count(o, "maxLength", path)?;
        self.bounds(min, max, ["minLength", "maxLength"], path)?;
        Ok(self.json.string(min, max))
    }

    /// `min` and `max` of a repetition are consistent and small enough.
    fn bounds(&self, min: usize, max: Option<usize>, keys: [&str; 2], path: &str) -> Result<()> {
        if max.is_some_and(|max| max < min) {
            let [lo, hi] = keys;
            return Err(SchemaError::new(path, format!("{lo} is above {hi}")));
        }
        self.budget(path, min.saturating_add(Json::repeat_cost(min, max)))
    }

    pub(super) fn number(&mut self, o: &Map<String, Value>, path: &str) -> Result<Seq> {
        no_maximum(o, path)?;
        if o.contains_key("exclusiveMinimum") {
            return Err(SchemaError::new(
                path,
                "exclusiveMinimum is not supported for numbers",
            ));
        }
        match o.get("minimum") {
            None => Ok(self.json.number(false)),
            Some(m) if m.as_f64() == Some(0.0) => Ok(self.json.number(true)),
            Some(_) => Err(SchemaError::new(
                path,
                "minimum is not supported for numbers unless it is 0",
            )),
        }
    }

    pub(super) fn integer(&mut self, o: &Map<String, Value>, path: &str) -> Result<Seq> {
        no_maximum(o, path)?;
        let mut lower: Option<f64> = None;
        for key in ["minimum", "exclusiveMinimum"] {
            let Some(v) = o.get(key) else { continue };
            let Some(v) = v.as_f64() else {
                return Err(SchemaError::new(path, format!("{key} must be a number")));
            };
            let least = if key == "minimum" {
                v.ceil()
            } else {
                v.floor() + 1.0
            };
            lower = Some(lower.map_or(least, |l| l.max(least)));
        }
        match lower {
            Some(l) if l < 0.0 => Err(SchemaError::new(
                path,
                "a negative minimum is not supported",
            )),
            Some(l) if l >= 1e15 => Err(SchemaError::new(
                path,
                "a minimum of 10^15 or more is not supported",
            )),
            // In range: a whole number from 0 to 10^15.
            l => Ok(self.json.integer(l.map(|l| l as u64))),
        }
    }

    pub(super) fn object(
        &mut self,
        o: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Seq> {
        let empty = Map::new();
        let properties = match o.get("properties") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => return Err(SchemaError::new(path, "properties must be an object")),
        };
        let required: Vec<&str> = match o.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(Value::as_str)
                .collect::<Option<_>>()
                .ok_or_else(|| SchemaError::new(path, "required must be an array of strings"))?,
            Some(_) => {
                return Err(SchemaError::new(
                    path,
                    "required must be an array of strings",
                ))
            }
        };
        let mut members = Vec::new();
        for (name, schema) in properties {
            let property_path = format!("{path}/properties/{}", pointer_escape(name));
            members.push(Member {
                name: name.clone(),
                value: self.schema(schema, &property_path, depth + 1)?,
                required: required.contains(&name.as_str()),
            });
        }
        for name in required {
            if !properties.contains_key(name) && !members.iter().any(|m| m.name == name) {
                let value = self.json.value();
                members.push(Member {
                    name: name.to_string(),
                    value,
                    required: true,
                });
            }
        }
        let others = match o.get("additionalProperties") {
            None if !o.contains_key("properties") && !o.contains_key("required") => {
                Some(self.json.value())
            }
            None | Some(Value::Bool(false)) => None,
            Some(schema) => {
                let others_path = format!("{path}/additionalProperties");
                Some(self.schema(schema, &others_path, depth + 1)?)
            }
        };
        Ok(self.json.object(members, others))
    }

    pub(super) fn array(
        &mut self,
        o: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Seq> {
        let mut prefix = Vec::new();
        match o.get("prefixItems") {
            None => {}
            Some(Value::Array(p)) => {
                for (i, schema) in p.iter().enumerate() {
                    prefix.push(self.schema(
                        schema,
                        &format!("{path}/prefixItems/{i}"),
                        depth + 1,
                    )?);
                }
            }
            Some(_) => return Err(SchemaError::new(path, "prefixItems must be an array")),
        }
        let items = match o.get("items") {
            None => Some(self.json.value()),
            Some(Value::Bool(false)) => None,
            Some(Value::Array(_)) => {
                return Err(SchemaError::new(
                    path,
                    "items as an array is not supported: use prefixItems",
                ))
            }
            Some(schema) => Some(self.schema(schema, &format!("{path}/items"), depth + 1)?),
        };
        let min = count(o, "minItems", path)?.unwrap_or(0);
        let max = count(o, "maxItems", path)?;
        self.bounds(min, max, ["minItems", "maxItems"], path)?;
        if items.is_none() && min > prefix.len() {
            return Err(SchemaError::new(
                path,
                "minItems exceeds prefixItems and items is false",
            ));
        }
        Ok(self.json.array(prefix, items, min, max))
    }
}

fn no_maximum(o: &Map<String, Value>, path: &str) -> Result<()> {
    match ["maximum", "exclusiveMaximum"]
        .into_iter()
        .find(|k| o.contains_key(*k))
    {
        Some(k) => Err(SchemaError::new(path, format!("{k} is not supported"))),
        None => Ok(()),
    }
}

/// A non-negative integer keyword (`minLength`, `maxItems`).
fn count(o: &Map<String, Value>, key: &str, path: &str) -> Result<Option<usize>> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }) {
            Some(n) => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            None => Err(SchemaError::new(
                path,
                format!("{key} must be a non-negative integer"),
            )),
        },
    }
}
