use super::*;
use crate::engine::grammar::test_support::{accepts, refuses};
use crate::engine::grammar::{seq, Compiled, Matcher};
use serde_json::json;

fn matcher(schema: &Value) -> Matcher {
    Matcher::new(Compiled::new(&schema_grammar(schema).unwrap()))
}

fn error(schema: Value) -> SchemaError {
    schema_grammar(&schema).unwrap_err()
}

#[test]
fn types_are_held() {
    let cases: [(&str, Value, &[&str]); 7] = [
        ("string", json!("s"), &["1", "null", "[]"]),
        ("number", json!(-1.5e3), &["\"1\"", "true"]),
        ("integer", json!(-42), &["1.0", "1e3", "\"1\"", "1.5"]),
        ("boolean", json!(true), &["0", "\"true\"", "null"]),
        ("null", json!(null), &["0", "\"null\"", "{}"]),
        ("object", json!({"x": [1]}), &["[]", "\"{}\"", "null"]),
        ("array", json!([1, "a"]), &["{}", "\"[]\"", "1"]),
    ];
    for (t, ok, bad) in cases {
        let m = matcher(&json!({"type": t}));
        accepts(&m, &[ok]);
        refuses(&m, bad);
    }
    let m = matcher(&json!({"type": ["string", "null"]}));
    accepts(&m, &[json!("a"), json!(null)]);
    refuses(&m, &["1", "{}"]);
    let m = matcher(&json!({"type": "integer", "nullable": true}));
    accepts(&m, &[json!(3), json!(null)]);
    refuses(&m, &["\"3\"", "3.5"]);
    for schema in [json!(true), json!({}), json!({"description": "anything"})] {
        accepts(
            &matcher(&schema),
            &[json!(1), json!({"a": [null]}), json!("s")],
        );
    }
}

#[test]
fn required_properties_must_come_and_no_others() {
    let m = matcher(&json!({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }));
    accepts(&m, &[json!({"name": "Ann", "age": 7})]);
    refuses(
        &m,
        &[
            r#"{"name":"Ann"}"#,
            r#"{"age":7}"#,
            r#"{}"#,
            r#"{"name":"Ann","age":"7"}"#,
            r#"{"name":"Ann","age":7,"x":1}"#,
            r#"{"name":"Ann","age":7,}"#,
            r#"[]"#,
        ],
    );
    // A required name with no schema takes any value.
    let m = matcher(&json!({"type": "object", "properties": {}, "required": ["x"]}));
    accepts(&m, &[json!({"x": [1, {"y": null}]})]);
    refuses(&m, &["{}", r#"{"x":1,"y":2}"#]);
}

#[test]
fn every_subset_of_optional_properties_in_declared_order() {
    let schema = json!({
        "type": "object",
        "properties": {"c": {"type": "integer"}, "a": {"type": "string"}, "b": {"type": "boolean"}},
    });
    let m = matcher(&schema);
    let values = [("c", json!(1)), ("a", json!("s")), ("b", json!(true))];
    for mask in 0..8 {
        let mut o = Map::new();
        for (i, (k, v)) in values.iter().enumerate() {
            if mask & (1 << i) != 0 {
                o.insert(k.to_string(), v.clone());
            }
        }
        accepts(&m, &[Value::Object(o)]);
    }
    refuses(
        &m,
        &[
            r#"{"a":"s","c":1}"#,
            r#"{"b":true,"a":"s"}"#,
            r#"{"c":1,"c":1}"#,
            r#"{,"a":"s"}"#,
            r#"{"c":1,,"b":true}"#,
            r#"{"c":1,}"#,
            r#"{"a":1}"#,
            r#"{"d":1}"#,
        ],
    );
    // A required property in the middle: the optional ones on either side.
    let mut schema = schema;
    schema["required"] = json!(["a"]);
    let m = matcher(&schema);
    accepts(
        &m,
        &[
            json!({"a": "s"}),
            json!({"c": 1, "a": "s"}),
            json!({"a": "s", "b": false}),
        ],
    );
    accepts(&m, &[json!({"c": 1, "a": "s", "b": false})]);
    refuses(&m, &["{}", r#"{"c":1}"#, r#"{"c":1,"b":true}"#]);
}

#[test]
fn additional_properties_come_after_and_never_shadow_declared_ones() {
    let m = matcher(&json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "é": {"type": "integer"}},
        "additionalProperties": true,
    }));
    accepts(
        &m,
        &[
            json!({"a": 1, "b": "x"}),
            json!({"b": "x", "c": [null]}),
            json!({"a": 1, "ab": "x", "": 2, "è": 3, "x\n": 4}),
            json!({"é": 2, "éé": "x"}),
        ],
    );
    refuses(
        &m,
        &[
            r#"{"a":"x"}"#,
            r#"{"b":1,"a":"x"}"#,
            r#"{"a":1,"a":"x"}"#,
            r#"{"b":1,"é":"x"}"#,
            // Escapes that could spell a declared name are not allowed.
            r#"{"\u0061":"x"}"#,
            r#"{"b":1,"a":1}"#,
        ],
    );
    let m = matcher(&json!({"type": "object", "additionalProperties": {"type": "integer"}}));
    accepts(&m, &[json!({}), json!({"x": 1, "\"y\"": 2})]);
    refuses(&m, &[r#"{"x":"1"}"#, r#"{"x":1,"y":null}"#]);
    // Without properties or required, an object is any object; with
    // them, or with additionalProperties false, only what is declared.
    accepts(
        &matcher(&json!({"type": "object"})),
        &[json!({"x": {"y": 1}})],
    );
    for schema in [
        json!({"type": "object", "properties": {}}),
        json!({"type": "object", "additionalProperties": false}),
    ] {
        let m = matcher(&schema);
        accepts(&m, &[json!({})]);
        refuses(&m, &[r#"{"x":1}"#]);
    }
}

#[test]
fn nested_objects_and_arrays() {
    let m = matcher(&json!({
        "type": "object",
        "properties": {
            "user": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                "required": ["tags"],
            },
        },
        "required": ["user"],
    }));
    accepts(
        &m,
        &[
            json!({"user": {"tags": []}}),
            json!({"user": {"tags": ["a", "b"]}}),
        ],
    );
    refuses(
        &m,
        &[
            r#"{"user":{"tags":[1]}}"#,
            r#"{"user":{}}"#,
            r#"{"user":[]}"#,
        ],
    );
}

#[test]
fn enum_and_const_are_literal_alternatives() {
    let m = matcher(&json!({"enum": ["red", 1, null, {"k": [1, 2]}]}));
    accepts(&m, &[json!("red"), json!(1), json!(null)]);
    assert!(m.matches(br#"{"k":[1,2]}"#));
    refuses(&m, &["\"blue\"", "2", "\"red \"", "{\"k\":[1]}"]);
    let m = matcher(&json!({"const": "日本"}));
    accepts(&m, &[json!("日本")]);
    refuses(&m, &["\"日\""]);
    // The rest of the schema still holds.
    let m = matcher(&json!({"type": "string", "enum": ["a", 1, "long"], "maxLength": 2}));
    accepts(&m, &[json!("a")]);
    refuses(&m, &["1", "\"long\""]);
    assert!(error(json!({"type": "integer", "enum": ["a"]}))
        .message
        .contains("enum"));
    assert!(schema_grammar(&json!({"enum": []})).is_err());
}

#[test]
fn any_of_one_of_all_of() {
    for key in ["anyOf", "oneOf"] {
        let m = matcher(&json!({key: [{"type": "string"}, {"type": "integer"}]}));
        accepts(&m, &[json!("a"), json!(3)]);
        refuses(&m, &["null", "1.5"]);
    }
    let m = matcher(&json!({"allOf": [{"type": "boolean"}], "description": "x"}));
    accepts(&m, &[json!(false)]);
    refuses(&m, &["0"]);
    assert!(
        error(json!({"allOf": [{"type": "string"}, {"maxLength": 3}]}))
            .message
            .contains("allOf")
    );
    // Keywords beside anyOf go into each branch.
    let m = matcher(&json!({
        "type": "object",
        "required": ["a"],
        "anyOf": [
            {"properties": {"a": {"type": "string"}}},
            {"properties": {"a": {"type": "integer"}}},
        ],
    }));
    accepts(&m, &[json!({"a": "x"}), json!({"a": 1})]);
    refuses(&m, &["{}", r#"{"a":true}"#, "[]"]);
    let e = error(json!({"type": "string", "anyOf": [{"type": "integer"}]}));
    assert_eq!(e.path, "#/anyOf/0");
    let e = error(json!({"additionalProperties": false, "anyOf": [{"properties": {}}]}));
    assert!(e.message.contains("additionalProperties"), "{e}");
}

#[test]
fn recursive_refs_match_nested_instances() {
    let tree = json!({
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["value"],
            },
        },
        "$ref": "#/$defs/node",
    });
    let m = matcher(&tree);
    let deep = json!({"value": 1, "children": [
        {"value": 2},
        {"value": 3, "children": [{"value": 4, "children": [{"value": 5, "children": []}]}]},
    ]});
    accepts(&m, &[json!({"value": 1}), deep]);
    refuses(
        &m,
        &[
            r#"{"value":1,"children":[{"value":2,"children":[{"children":[]}]}]}"#,
            r#"{"value":1,"children":[{"value":"2"}]}"#,
            r#"{"children":[]}"#,
        ],
    );
    // The root itself, and definitions with an escaped name.
    let m = matcher(&json!({"type": "object", "properties": {"next": {"$ref": "#"}}}));
    accepts(&m, &[json!({}), json!({"next": {"next": {}}})]);
    refuses(&m, &[r#"{"next":1}"#]);
    let m = matcher(&json!({
        "definitions": {"a/b~": {"type": "array", "items": {"$ref": "#/definitions/a~1b~0"}, "maxItems": 1}},
        "$ref": "#/definitions/a~1b~0",
    }));
    accepts(&m, &[json!([]), json!([[[]]])]);
    refuses(&m, &["[[],[]]", "[1]"]);
}

#[test]
fn bad_refs_are_refused() {
    let cycle = json!({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"});
    assert_eq!(error(cycle).path, "#/$defs/a/anyOf/0");
    assert!(schema_grammar(&json!({"$ref": "#"})).is_err());
    for r in [
        "https://example.com/s.json",
        "#anchor",
        "#/$defs/missing",
        "other.json#/a",
    ] {
        let e = error(json!({"$ref": r, "$defs": {}}));
        assert_eq!(e.path, "#", "{r}");
    }
    let e = error(json!({"$ref": "#/$defs/x", "type": "string", "$defs": {"x": {}}}));
    assert!(e.message.contains("$ref beside type"), "{e}");
}

#[test]
fn arrays_hold_their_counts_and_tuples() {
    let m = matcher(
        &json!({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}),
    );
    accepts(&m, &[json!([1]), json!([1, 2, 3])]);
    refuses(&m, &["[]", "[1,2,3,4]", "[1,\"2\"]"]);
    let m =
        matcher(&json!({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false}));
    accepts(&m, &[json!([]), json!(["a"]), json!(["a", 1])]);
    refuses(&m, &["[1]", "[\"a\",1,2]", "[\"a\",\"b\"]"]);
    let m = matcher(&json!({
        "type": "array",
        "prefixItems": [{"type": "string"}],
        "items": {"type": "boolean"},
        "minItems": 2,
    }));
    accepts(&m, &[json!(["a", true]), json!(["a", true, false, true])]);
    refuses(&m, &["[\"a\"]", "[true,true]", "[\"a\",1]"]);
    let m = matcher(&json!({"type": "array", "maxItems": 0}));
    accepts(&m, &[json!([])]);
    refuses(&m, &["[1]"]);
    let m = matcher(&json!({"type": "array", "minItems": 3}));
    accepts(&m, &[json!([1, "2", [3]]), json!([1, 2, 3, 4, 5])]);
    refuses(&m, &["[1,2]"]);
    assert!(
        error(json!({"prefixItems": [{}], "items": false, "minItems": 2}))
            .message
            .contains("minItems")
    );
    assert!(
        error(json!({"type": "array", "minItems": 3, "maxItems": 2}))
            .message
            .contains("minItems")
    );
}

#[test]
fn string_lengths_count_characters() {
    let m = matcher(&json!({"type": "string", "minLength": 2, "maxLength": 3}));
    accepts(
        &m,
        &[
            json!("ab"),
            json!("abc"),
            json!("日本"),
            json!("😀😀"),
            json!("\n\t"),
        ],
    );
    for ok in [r#""\uD83D\uDE00x""#, r#""\u00e9\n\"""#] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    refuses(
        &m,
        &[
            "\"a\"",
            "\"abcd\"",
            "\"日本語語\"",
            r#""\n""#,
            "\"\"",
            r#""\uD83D\uDE00""#,
        ],
    );
}

#[test]
fn integer_lower_bounds_are_exact() {
    for (schema, least) in [
        (json!({"type": "integer", "minimum": 0}), 0),
        (json!({"type": "integer", "minimum": 1}), 1),
        (json!({"type": "integer", "exclusiveMinimum": 0}), 1),
        (json!({"type": "integer", "minimum": 137}), 137),
        (
            json!({"type": "integer", "minimum": 9.5, "exclusiveMinimum": 3}),
            10,
        ),
    ] {
        let m = matcher(&schema);
        for n in -20i64..2000 {
            assert_eq!(
                m.matches(n.to_string().as_bytes()),
                n >= least,
                "{schema} {n}"
            );
        }
        assert!(m.matches(b"1234567890123456"));
        refuses(&m, &["-0", "01", "12345678901234567", "200.5"]);
    }
    let m = matcher(&json!({"type": "number", "minimum": 0}));
    accepts(&m, &[json!(0), json!(0.5), json!(3e5)]);
    refuses(&m, &["-0.5", "-1"]);
    for (schema, word) in [
        (json!({"type": "integer", "maximum": 10}), "maximum"),
        (
            json!({"type": "integer", "exclusiveMaximum": 10}),
            "exclusiveMaximum",
        ),
        (json!({"type": "integer", "minimum": -1}), "negative"),
        (json!({"type": "number", "minimum": 1}), "minimum"),
        (
            json!({"type": "number", "exclusiveMinimum": 0}),
            "exclusiveMinimum",
        ),
        (json!({"type": "number", "multipleOf": 2}), "multipleOf"),
        (json!({"maximum": 3}), "maximum"),
    ] {
        let e = error(schema.clone());
        assert!(e.message.contains(word), "{schema}: {e}");
    }
}

#[test]
fn unsupported_keywords_are_refused_where_they_are() {
    let cases = [
        (
            json!({"properties": {"a": {"type": "string", "pattern": "x"}}}),
            "#/properties/a",
            "pattern is not supported",
        ),
        (
            json!({"items": {"not": {}}}),
            "#/items",
            "unsupported JSON Schema keyword not",
        ),
        (
            json!({"$defs": {"x": {"uniqueItems": true}}, "$ref": "#/$defs/x"}),
            "#/$defs/x",
            "uniqueItems",
        ),
        (
            json!({"anyOf": [{}, {"contains": {}}]}),
            "#/anyOf/1",
            "contains",
        ),
        (
            json!({"properties": {"a/b": {"minProperties": 1}}}),
            "#/properties/a~1b",
            "minProperties",
        ),
        (
            json!({"type": "object", "patternProperties": {}}),
            "#",
            "patternProperties",
        ),
        (
            json!({"additionalProperties": {"propertyNames": {}}}),
            "#/additionalProperties",
            "propertyNames",
        ),
        (
            json!({"prefixItems": [{"dependentRequired": {}}]}),
            "#/prefixItems/0",
            "dependentRequired",
        ),
        (
            json!({"if": {}, "then": {}}),
            "#",
            "unsupported JSON Schema keyword",
        ),
        (
            json!({"properties": {"a": false}}),
            "#/properties/a",
            "false",
        ),
        (json!({"type": "strin"}), "#", "strin"),
        (json!({"items": [{}]}), "#", "prefixItems"),
    ];
    for (schema, path, message) in cases {
        let e = error(schema.clone());
        assert_eq!(e.path, path, "{schema}: {e}");
        assert!(e.message.contains(message), "{schema}: {e}");
    }
    let e = error(json!({"properties": {"a": {"pattern": "x"}}}));
    assert_eq!(
        e.to_string(),
        "pattern is not supported (at #/properties/a)"
    );
    // Annotations are not constraints.
    let m = matcher(&json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "t",
        "description": "d", "default": 1, "examples": [1], "$comment": "c", "deprecated": false,
        "readOnly": false, "writeOnly": false, "format": "date-time", "strict": true, "name": "n",
        "type": "string",
    }));
    accepts(&m, &[json!("not a date")]);
}

#[test]
fn oversized_schemas_are_refused() {
    let mut deep = json!({"type": "integer"});
    for _ in 0..70 {
        deep = json!({"type": "array", "items": deep});
    }
    assert!(error(deep).message.contains("deeper"));
    assert!(error(json!({"type": "string", "maxLength": 1_000_000}))
        .message
        .contains("too large"));
    assert!(error(json!({"type": "array", "minItems": 1_000_000}))
        .message
        .contains("too large"));
    // Bounds a model writes are fine.
    matcher(&json!({"type": "string", "maxLength": 5000}));
}

#[test]
fn schema_seq_composes_with_other_rules() {
    let mut b = GrammarBuilder::new();
    let schema =
        json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]});
    let args = schema_seq(&mut b, &schema).unwrap();
    let object = any_object(&mut b);
    let root = b.rule(vec![
        seq([literal("<call>"), args, literal("</call>")]),
        object,
    ]);
    let m = Matcher::new(Compiled::new(&b.build(root).unwrap()));
    for ok in [r#"<call>{"q":"x"}</call>"#, r#"{"z":1}"#] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    for bad in [r#"<call>{}</call>"#, r#"<call>{"q":"x"}"#, "[]"] {
        assert!(!m.matches(bad.as_bytes()), "{bad}");
    }
}
