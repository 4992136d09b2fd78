//! JSON syntax, through `any_value` and `json_object_grammar`.

use crate::engine::grammar::json_schema::{any_value, json_object_grammar};
use crate::engine::grammar::test_support::{accepts, refuses};
use crate::engine::grammar::{Compiled, GrammarBuilder, Matcher};
use serde_json::{json, Value};

fn any() -> Matcher {
    let mut b = GrammarBuilder::new();
    let value = any_value(&mut b);
    let root = b.rule(vec![value]);
    Matcher::new(Compiled::new(&b.build(root).unwrap()))
}

#[test]
fn any_value_takes_every_kind_of_value() {
    let m = any();
    accepts(
        &m,
        &[
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!("x"),
            json!([]),
            json!({}),
            json!([1, "a", [null], {"k": {"j": []}}]),
            json!({"a": 1, "b": [true, false], "": {"c": null}}),
        ],
    );
    refuses(
        &m,
        &[
            "",
            "nul",
            "True",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{a:1}",
            "{\"a\":1,}",
            "[1 2]",
            "'x'",
            "[1]]",
        ],
    );
}

#[test]
fn whitespace_is_bounded_and_never_around_the_value() {
    let m = any();
    let deep = format!("[1,\n{}2]", " ".repeat(16));
    for ok in [
        "{ \"a\" : 1 }",
        "[1,\n  2\n]",
        "{\n\t\t\"a\":\n1}",
        "[ ]",
        "{\n}",
        deep.as_str(),
    ] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    let too_deep = format!("[1,\n{}2]", " ".repeat(17));
    for bad in [
        " 1",
        "1 ",
        "\n{}",
        "[1,  2]",
        "[1,\r\n2]",
        "{\"a\"\n\n:1}",
        "[1 ,\n 2]x",
        too_deep.as_str(),
    ] {
        assert!(!m.matches(bad.as_bytes()), "{bad:?}");
    }
}

#[test]
fn numbers_have_json_syntax_and_bounded_digits() {
    let m = any();
    for ok in [
        "0",
        "-0",
        "-0.5",
        "1e10",
        "1E+10",
        "2.5e-300",
        "1234567890123456",
        "0.1234567890123456",
        "-7",
        "10",
    ] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    for bad in [
        "01",
        "1.",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "1.e5",
        "--1",
        "0x1",
        "NaN",
        "Infinity",
        "1e1234",
        "12345678901234567",
        "0.12345678901234567",
    ] {
        assert!(!m.matches(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn strings_hold_escapes_and_utf8_only() {
    let m = any();
    let good: [&str; 9] = [
        r#""é 日本 😀""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u00e9\u00E9""#,
        r#""\uD83D\uDE00""#,
        r#""\u0000""#,
        "\"\u{7f}\u{10ffff}\u{fffd}\"",
        "\"\u{80}\u{7ff}\u{800}\u{d7ff}\u{e000}\u{ffff}\u{10000}\"",
        r#""""#,
        r#""a b""#,
    ];
    for ok in good {
        assert!(m.matches(ok.as_bytes()), "{ok}");
        serde_json::from_str::<Value>(ok).unwrap();
    }
    let bad: [&[u8]; 19] = [
        b"\"\xC0\x80\"",
        b"\"\xC1\xBF\"",
        b"\"\x80\"",
        b"\"\xED\xA0\x80\"",
        b"\"\xE0\x80\x80\"",
        b"\"\xF0\x80\x80\x80\"",
        b"\"\xF4\x90\x80\x80\"",
        b"\"\xF5\x80\x80\x80\"",
        b"\"\xC3\"",
        b"\"\x01\"",
        b"\"\n\"",
        b"\"\t\"",
        b"\"\x1f\"",
        br#""\x""#,
        br#""\u12""#,
        br#""\uD800""#,
        br#""\uDC00""#,
        br#""\uD800\u0041""#,
        b"\"abc",
    ];
    for b in bad {
        assert!(!m.matches(b), "{}", String::from_utf8_lossy(b));
    }
}

/// A small deterministic generator (xorshift), so failures replay.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn string(&mut self) -> String {
        const CHARS: &[char] = &[
            'a', 'Z', ' ', '"', '\\', '/', '\n', '\u{1}', '\u{7f}', 'é', '日', '😀', '\u{2028}',
        ];
        (0..self.below(6))
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize])
            .collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        let kinds = if depth == 0 { 6 } else { 8 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => json!(self.below(2_000_000_000_000_000) as i64 - 1_000_000_000_000_000),
            3 => json!((self.below(2_000_000) as f64 - 1e6) / 10f64.powi(self.below(9) as i32)),
            // Far from 1, where serde_json writes an exponent rather than
            // up to 17 digits after a run of zeros.
            4 => json!(
                1.5 * 10f64
                    .powi((20 + self.below(280) as i32) * if self.below(2) == 0 { 1 } else { -1 })
            ),
            5 => Value::String(self.string()),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.string(), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }
}

#[test]
fn random_values_are_accepted_and_end_where_they_end() {
    let m = any();
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2000 {
        let v = g.value(5);
        accepts(&m, std::slice::from_ref(&v));
        let text = v.to_string();
        // No proper prefix of an object, array or string is a value, and
        // nothing may follow one.
        if matches!(v, Value::Object(_) | Value::Array(_) | Value::String(_)) {
            let mut s = m.start();
            for (i, &b) in text.as_bytes().iter().enumerate() {
                assert!(!s.is_accepting(), "{text} accepted after {i} bytes");
                s = m.step(&s, b);
            }
            assert!(s.is_complete(), "{text}");
        }
        assert!(!m.matches(format!("{text},").as_bytes()), "{text},");
    }
}

#[test]
fn json_object_grammar_takes_objects_only() {
    let m = Matcher::new(Compiled::new(&json_object_grammar()));
    accepts(
        &m,
        &[json!({}), json!({"a": {"b": [1, {"c": "d"}]}, "e": null})],
    );
    refuses(&m, &["[]", "1", "\"x\"", "null", "{", "{}{}", " {}"]);
}
