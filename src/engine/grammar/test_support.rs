//! Assertions the grammar tests share.

use super::Matcher;
use serde_json::Value;

/// Each value is accepted, written compactly and pretty-printed.
pub fn accepts(m: &Matcher, values: &[Value]) {
    for v in values {
        let compact = v.to_string();
        assert!(m.matches(compact.as_bytes()), "refused {compact}");
        let pretty = serde_json::to_string_pretty(v).unwrap();
        assert!(m.matches(pretty.as_bytes()), "refused {pretty}");
    }
}

pub fn refuses(m: &Matcher, texts: &[&str]) {
    for t in texts {
        assert!(!m.matches(t.as_bytes()), "accepted {t}");
    }
}
