//! JSON as Python's `json.dumps` writes it, for the `tojson` filter of chat
//! templates: `", "` and `": "` between items (`","` when indenting), keys
//! in their given order, non-ASCII left as is. Templates are written
//! against transformers' rendering, and a tool schema printed with other
//! spacing is a prompt the model never saw in training.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Error, ErrorKind};

/// The `tojson` filter: `x | tojson` or `x | tojson(indent=2)`.
pub fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    // Python's other options make no difference to the text here.
    for unused in ["ensure_ascii", "sort_keys", "separators"] {
        let _: Option<Value> = kwargs.get(unused)?;
    }
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(usize::try_from(v)?),
    };
    let mut out = String::new();
    write(value, indent, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

fn write(v: &Value, indent: Option<usize>, level: usize, out: &mut String) -> Result<(), Error> {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                let key = k.as_str().map_or_else(|| k.to_string(), str::to_owned);
                out.push_str(&scalar(&Value::from(key))?);
                out.push_str(": ");
                write(&v.get_item(k)?, indent, level + 1, out)?;
            }
            newline(out, level);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, level + 1);
                write(item, indent, level + 1, out)?;
            }
            newline(out, level);
            out.push(']');
        }
        _ => out.push_str(&scalar(v)?),
    }
    Ok(())
}

fn scalar(v: &Value) -> Result<String, Error> {
    if v.is_undefined() {
        return Ok("null".into());
    }
    serde_json::to_string(v).map_err(|e| {
        Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON").with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn render(src: &str, ctx: serde_json::Value) -> String {
        let mut env = Environment::new();
        env.add_filter("tojson", tojson);
        env.render_str(src, Value::from_serialize(&ctx)).unwrap()
    }

    #[test]
    fn spacing_and_order_are_pythons() {
        let ctx = serde_json::json!({"x": {"type": "object", "b": [1, 2.5, "é<>"], "a": null, "e": {}, "f": []}});
        assert_eq!(
            render("{{ x | tojson }}", ctx.clone()),
            r#"{"type": "object", "b": [1, 2.5, "é<>"], "a": null, "e": {}, "f": []}"#
        );
        assert_eq!(
            render("{{ x.b | tojson(indent=2) }}", ctx.clone()),
            "[\n  1,\n  2.5,\n  \"é<>\"\n]"
        );
        assert_eq!(
            render(
                "{{ x | tojson(indent=1) }}",
                serde_json::json!({"x": {"k": [1]}})
            ),
            "{\n \"k\": [\n  1\n ]\n}"
        );
        assert_eq!(render("{{ 'a\"b' | tojson }}", ctx), r#""a\"b""#);
    }
}
