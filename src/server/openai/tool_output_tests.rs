use super::*;

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("call_{n}")
    }
}

#[test]
fn generic_replies_are_calls_or_a_response() {
    let a = parse(
        r#"{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now", "arguments": {}}]}"#,
        ToolFormat::Generic,
        &mut ids(),
    );
    assert_eq!(a.content, "");
    assert_eq!(
        a.calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            },
            ToolCall {
                id: "call_2".into(),
                name: "now".into(),
                arguments: "{}".into()
            },
        ]
    );
    let a = parse(
        r#"{"response": "It is sunny."}"#,
        ToolFormat::Generic,
        &mut ids(),
    );
    assert_eq!((a.content.as_str(), a.calls.len()), ("It is sunny.", 0));
    // Cut short: stays text.
    let cut = r#"{"tool_calls": [{"name": "get_wea"#;
    assert_eq!(parse(cut, ToolFormat::Generic, &mut ids()).content, cut);
}

#[test]
fn hermes_replies_split_content_from_calls() {
    let text = "Let me look.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", \"arguments\": {}}\n</tool_call>";
    let a = parse(text, ToolFormat::Hermes, &mut ids());
    assert_eq!(a.content, "Let me look.");
    let names: Vec<&str> = a.calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["f", "g"]);
    assert_eq!(a.calls[0].arguments, r#"{"x":1}"#);
    // Malformed JSON inside the markup: everything is content.
    let broken = "<tool_call>\n{\"name\": \"f\", \"argu\n</tool_call>";
    let a = parse(broken, ToolFormat::Hermes, &mut ids());
    assert_eq!((a.content.as_str(), a.calls.len()), (broken, 0));
    // Text after the calls: not a call reply.
    let trailing = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> and more";
    assert!(parse(trailing, ToolFormat::Hermes, &mut ids())
        .calls
        .is_empty());
}

#[test]
fn hermes_streams_content_until_the_call_begins() {
    let text =
        "Sure <b>. Checking.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>";
    // Every split of the text into two pieces, and byte-sized pieces.
    for cut in 0..=text.len() {
        let mut s = Splitter::new(ToolFormat::Hermes);
        let mut out = s.push(&text[..cut]);
        out += &s.push(&text[cut..]);
        let a = s.finish(&mut ids());
        assert_eq!(
            (out + &a.content).trim_end(),
            "Sure <b>. Checking.",
            "cut at {cut}"
        );
        assert_eq!(a.calls.len(), 1);
    }
    let mut s = Splitter::new(ToolFormat::Hermes);
    let mut out = String::new();
    for c in text.chars() {
        out += &s.push(&c.to_string());
        assert!(!out.contains("<t"), "a possible tag went out: {out}");
    }
    assert!(out.starts_with("Sure <b>. Checking."));
}

#[test]
fn streams_without_calls_send_everything() {
    let text = "a < b, and <tool_ is not a call";
    let mut s = Splitter::new(ToolFormat::Hermes);
    let mut out = String::new();
    for c in text.chars() {
        out += &s.push(&c.to_string());
    }
    let a = s.finish(&mut ids());
    assert_eq!(out + &a.content, text);
    assert!(a.calls.is_empty());

    let mut s = Splitter::new(ToolFormat::Generic);
    assert_eq!(s.push(r#"{"response": "hi"}"#), "");
    assert_eq!(s.finish(&mut ids()).content, "hi");
}

#[test]
fn partial_suffixes() {
    assert_eq!(partial_suffix("abc<tool", OPEN), 5);
    assert_eq!(partial_suffix("abc<", OPEN), 1);
    assert_eq!(partial_suffix("abc", OPEN), 0);
    assert_eq!(partial_suffix("é<t", OPEN), 2);
}
