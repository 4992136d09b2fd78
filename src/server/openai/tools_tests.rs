use super::*;
use crate::engine::grammar::Matcher;

fn tools() -> Vec<Value> {
    vec![
        json!({"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"city": {"$ref": "#/$defs/city"}},
            "required": ["city"],
            "$defs": {"city": {"type": "string", "maxLength": 10}},
        }}}),
        json!({"type": "function", "function": {"name": "now"}}),
    ]
}

fn matcher(choice: Value, parallel: bool, format: ToolFormat) -> Matcher {
    let setup = parse(Some(&tools()), Some(&choice), Some(parallel), format)
        .unwrap()
        .unwrap();
    Matcher::new(setup.grammar().unwrap().unwrap())
}

const WEATHER: &str = r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#;
const NOW: &str = r#"{"name": "now", "arguments": {}}"#;

#[test]
fn hermes_required_calls_are_tagged_json() {
    let m = matcher(json!("required"), true, ToolFormat::Hermes);
    let one = format!("<tool_call>\n{WEATHER}\n</tool_call>");
    assert!(m.matches(one.as_bytes()));
    assert!(m.matches(format!("{one}\n<tool_call>\n{NOW}\n</tool_call>").as_bytes()));
    for bad in [
        WEATHER.to_owned(),
        "Sure!".to_owned(),
        one.replace("Paris", "Parisparisparis"),
        one.replace("get_weather", "get_time"),
    ] {
        assert!(!m.matches(bad.as_bytes()), "{bad}");
    }
    let single = matcher(json!("required"), false, ToolFormat::Hermes);
    assert!(single.matches(one.as_bytes()));
    assert!(!single.matches(format!("{one}\n{one}").as_bytes()));
}

#[test]
fn generic_auto_is_calls_or_a_response() {
    let m = matcher(json!("auto"), true, ToolFormat::Generic);
    assert!(m.matches(format!(r#"{{"tool_calls": [{WEATHER}, {NOW}]}}"#).as_bytes()));
    assert!(m.matches(br#"{"response": "It rains."}"#));
    let required = matcher(json!("required"), true, ToolFormat::Generic);
    assert!(!required.matches(br#"{"response": "It rains."}"#));
    assert!(!required.matches(br#"{"tool_calls": []}"#));
    let named = matcher(
        json!({"type": "function", "function": {"name": "now"}}),
        true,
        ToolFormat::Generic,
    );
    assert!(named.matches(format!(r#"{{"tool_calls": [{NOW}]}}"#).as_bytes()));
    assert!(!named.matches(format!(r#"{{"tool_calls": [{WEATHER}]}}"#).as_bytes()));
}

#[test]
fn choices_and_names_are_checked() {
    let t = tools();
    assert!(
        parse(Some(&t), Some(&json!("none")), None, ToolFormat::Generic)
            .unwrap()
            .is_none()
    );
    assert!(parse(None, None, None, ToolFormat::Generic)
        .unwrap()
        .is_none());
    for (tools, choice) in [
        (t.clone(), json!("maybe")),
        (
            t.clone(),
            json!({"type": "function", "function": {"name": "nope"}}),
        ),
        (vec![], json!("required")),
        (
            vec![json!({"type": "function", "function": {"name": "has space"}})],
            json!("auto"),
        ),
        (vec![t[1].clone(), t[1].clone()], json!("auto")),
    ] {
        assert!(
            parse(Some(&tools), Some(&choice), None, ToolFormat::Generic).is_err(),
            "{tools:?} {choice}"
        );
    }
}

#[test]
fn generic_history_becomes_plain_turns() {
    let mut messages = vec![
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{\"tz\": \"UTC\"}"}}]}),
        json!({"role": "tool", "tool_call_id": "c1", "content": "12:00"}),
    ];
    let mut hermes = messages.clone();
    rewrite_history(&mut hermes, ToolFormat::Hermes);
    assert_eq!(
        hermes[0]["tool_calls"][0]["function"]["arguments"],
        json!({"tz": "UTC"})
    );
    assert_eq!(hermes[1]["role"], "tool");
    rewrite_history(&mut messages, ToolFormat::Generic);
    assert_eq!(
        messages[0],
        json!({"role": "assistant", "content": r#"{"tool_calls":[{"name":"now","arguments":{"tz":"UTC"}}]}"#})
    );
    assert_eq!(messages[1]["role"], "user");
    assert!(messages[1]["content"].as_str().unwrap().contains("12:00"));
}

#[test]
fn a_named_choice_is_one_call() {
    let named = json!({"type": "function", "function": {"name": "now"}});
    for format in [ToolFormat::Hermes, ToolFormat::Generic] {
        let m = matcher(named.clone(), true, format);
        let (one, two) = match format {
            ToolFormat::Hermes => (
                format!("<tool_call>\n{NOW}\n</tool_call>"),
                format!("<tool_call>\n{NOW}\n</tool_call>\n<tool_call>\n{NOW}\n</tool_call>"),
            ),
            ToolFormat::Generic => (
                format!(r#"{{"tool_calls": [{NOW}]}}"#),
                format!(r#"{{"tool_calls": [{NOW}, {NOW}]}}"#),
            ),
        };
        assert!(
            m.matches(one.as_bytes()) && !m.matches(two.as_bytes()),
            "{format:?}"
        );
    }
}
