use super::*;
use std::sync::Arc;

fn matcher(b: GrammarBuilder, root: RuleId) -> Matcher {
    Matcher::new(Compiled::new(&b.build(root).unwrap()))
}

#[test]
fn literal_alternatives_share_a_prefix() {
    let mut b = GrammarBuilder::new();
    let root = b.rule(vec![literal("true"), literal("trust"), literal("tr")]);
    let m = matcher(b, root);
    for ok in ["true", "trust", "tr"] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    for bad in ["", "t", "tru", "truex", "trusts", "x"] {
        assert!(!m.matches(bad.as_bytes()), "{bad}");
    }
    let s = m.feed(&m.start(), b"tr");
    assert!(s.is_accepting() && !s.is_complete());
    assert_eq!(m.next_bytes(&s), ByteSet::of(b"u"));
    let s = m.feed(&m.start(), b"true");
    assert!(s.is_complete());
    assert!(m.step(&s, b'x').is_dead());
}

#[test]
fn repeat_counts_between_its_bounds() {
    let mut b = GrammarBuilder::new();
    let digit = bytes(ByteSet::range(b'0', b'9'));
    let body = b.repeat(digit, 2, Some(4));
    let root = b.rule(vec![seq([literal("<"), body, literal(">")])]);
    let m = matcher(b, root);
    for (input, ok) in [
        ("<>", false),
        ("<1>", false),
        ("<12>", true),
        ("<1234>", true),
        ("<12345>", false),
    ] {
        assert_eq!(m.matches(input.as_bytes()), ok, "{input}");
    }
}

#[test]
fn right_recursion_runs_in_constant_depth() {
    let mut b = GrammarBuilder::new();
    let xs = b.star(literal("x"));
    let root = b.rule(vec![seq([xs, literal(".")])]);
    let m = matcher(b, root);
    let long = "x".repeat(100_000) + ".";
    assert!(m.matches(long.as_bytes()));
    let s = m.feed(&m.start(), "x".repeat(1000).as_bytes());
    assert_eq!(
        s,
        m.feed(&m.start(), b"x"),
        "the state does not grow with the input"
    );
}

#[test]
fn nested_rules_return_to_their_caller() {
    // list ::= "[" (item ("," item)*)? "]"; item ::= "a" | list
    let mut b = GrammarBuilder::new();
    let item = b.reserve();
    let more = b.star(seq([literal(","), vec![Element::Rule(item)]]));
    let inner = b.optional(seq([vec![Element::Rule(item)], more]));
    let list = b.rule(vec![seq([literal("["), inner, literal("]")])]);
    b.define(item, vec![literal("a"), vec![Element::Rule(list)]]);
    let m = matcher(b, list);
    for ok in ["[]", "[a]", "[a,a]", "[[a],[],[[a,a]]]"] {
        assert!(m.matches(ok.as_bytes()), "{ok}");
    }
    for bad in ["[", "[a,]", "[[a]", "[a]]", "[,a]"] {
        assert!(!m.matches(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn build_refuses_broken_grammars() {
    let mut b = GrammarBuilder::new();
    let r = b.reserve();
    assert_eq!(b.build(r).unwrap_err(), GrammarError::Undefined(r));

    let mut b = GrammarBuilder::new();
    let r = b.reserve();
    let eps = b.optional(literal("x"));
    b.define(
        r,
        vec![
            seq([eps, vec![Element::Rule(r)], literal("y")]),
            literal("y"),
        ],
    );
    assert_eq!(b.build(r).unwrap_err(), GrammarError::LeftRecursive(r));

    let mut b = GrammarBuilder::new();
    let r = b.rule(vec![]);
    assert_eq!(b.build(r).unwrap_err(), GrammarError::Empty(r));
}

#[test]
fn compiled_grammars_are_shared() {
    let mut b = GrammarBuilder::new();
    let root = b.rule(vec![literal("ab")]);
    let c = Compiled::new(&b.build(root).unwrap());
    let (m1, m2) = (Matcher::new(c.clone()), Matcher::new(c.clone()));
    assert_eq!(Arc::strong_count(&c), 3);
    assert_eq!(m1.feed(&m1.start(), b"a"), m2.feed(&m2.start(), b"a"));
}
