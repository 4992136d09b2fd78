use super::*;
use serde_json::json;

/// A fresh database file of its own for each test.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-db-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("state.db")
}

fn record(version: &str) -> VersionRecord {
    VersionRecord {
        model: "m".into(),
        version: version.into(),
        artifact: "/models/m.gguf".into(),
        sha256: "ab".repeat(32),
        size_bytes: 1234,
        source: "test".into(),
        quantization: "q4_1".into(),
        created_at: now_ms(),
        created_by: "tester".into(),
        notes: String::new(),
        warmup: json!([{"prompt": "Hi"}]),
        eval_score: Some(0.75),
        quantize: Some("q4_k".into()),
        eval_set: Some(json!({"prompts": [{"prompt": "Hi", "expect": "Hello"}]})),
    }
}

fn audit<'a>(action: &'a str, version: &'a str) -> NewAudit<'a> {
    NewAudit {
        actor: "tester",
        action,
        model: "m",
        version: Some(version),
        before: json!(null),
        after: json!({"stable": version}),
        ok: true,
        detail: String::new(),
    }
}

#[test]
fn state_survives_reopening_the_file() {
    let path = scratch("reopen");
    {
        let store = Store::open(&path).unwrap();
        store
            .insert_version(&record("v1"), &audit("register", "v1"))
            .unwrap();
        store
            .insert_version(&record("v2"), &audit("register", "v2"))
            .unwrap();
        let d = Deployment {
            model: "m".into(),
            stable: "v2".into(),
            previous: Some("v1".into()),
            updated_at: now_ms(),
            updated_by: "tester".into(),
            ..Deployment::default()
        };
        store.set_deployment(&d, &audit("deploy", "v2")).unwrap();
    }
    let store = Store::open(&path).unwrap();
    let versions: Vec<String> = store
        .versions(Some("m"))
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, ["v1", "v2"]);
    assert_eq!(
        store.version("m", "v1").unwrap(),
        Some(record_like(&store, "v1"))
    );
    let d = store.deployment("m").unwrap().unwrap();
    assert_eq!(
        (d.stable.as_str(), d.previous.as_deref()),
        ("v2", Some("v1"))
    );
    let trail = store.audit_trail(Some("m"), 10).unwrap();
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["register", "register", "deploy"]);
    assert!(trail.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(trail[2].after, json!({"stable": "v2"}));
}

/// The stored record, which must equal what was inserted field by field.
fn record_like(store: &Store, version: &str) -> VersionRecord {
    let stored = store.version("m", version).unwrap().unwrap();
    let mut expected = record(version);
    expected.created_at = stored.created_at;
    assert_eq!(stored, expected);
    stored
}

#[test]
fn versions_are_immutable_and_unique() {
    let store = Store::open(&scratch("immutable")).unwrap();
    store
        .insert_version(&record("v1"), &audit("register", "v1"))
        .unwrap();
    let again = store.insert_version(&record("v1"), &audit("register", "v1"));
    assert!(
        matches!(again, Err(StoreError::VersionExists(..))),
        "{again:?}"
    );
    let conn = store.conn.lock().unwrap();
    let update = conn.execute("UPDATE versions SET artifact = 'x'", []);
    assert!(update.unwrap_err().to_string().contains("immutable"));
    let delete = conn.execute("DELETE FROM audit", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn audit_limit_keeps_the_newest_in_order() {
    let store = Store::open(&scratch("limit")).unwrap();
    for i in 0..5 {
        let v = format!("v{i}");
        store.audit(&audit("deploy", &v)).unwrap();
    }
    let last: Vec<Option<String>> = store
        .audit_trail(None, 2)
        .unwrap()
        .into_iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(last, [Some("v3".into()), Some("v4".into())]);
}

#[test]
fn warmup_outcomes_are_kept() {
    let store = Store::open(&scratch("warmup")).unwrap();
    assert_eq!(store.warmup("m", "v1").unwrap(), None);
    let failed = WarmupCheck {
        passed: false,
        detail: "prompt 1 did not contain `Paris`".into(),
        at: now_ms(),
    };
    store.record_warmup("m", "v1", &failed).unwrap();
    assert_eq!(store.warmup("m", "v1").unwrap(), Some(failed));
}

#[test]
fn a_database_from_an_older_build_gains_the_new_columns() {
    let path = scratch("migrate");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        // The first schema: no rollout, shadow or eval_score columns.
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE versions (model TEXT NOT NULL, version TEXT NOT NULL,
                artifact TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL,
                source TEXT NOT NULL, quantization TEXT NOT NULL, created_at INTEGER NOT NULL,
                created_by TEXT NOT NULL, notes TEXT NOT NULL, warmup TEXT NOT NULL,
                PRIMARY KEY (model, version));
             CREATE TABLE deployments (model TEXT PRIMARY KEY, stable TEXT NOT NULL,
                previous TEXT, canary TEXT, canary_percent REAL NOT NULL DEFAULT 0,
                updated_at INTEGER NOT NULL, updated_by TEXT NOT NULL);
             INSERT INTO deployments (model, stable, updated_at, updated_by)
                VALUES ('m', 'v1', 1, 'old');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let d = store.deployment("m").unwrap().unwrap();
    assert_eq!((d.stable.as_str(), d.shadow, d.rollout), ("v1", None, None));
    store
        .insert_version(&record("v2"), &audit("register", "v2"))
        .unwrap();
    let v2 = store.version("m", "v2").unwrap().unwrap();
    assert_eq!(v2.eval_score, Some(0.75));
    assert_eq!(v2.quantize.as_deref(), Some("q4_k"));
    assert_eq!(v2.eval_set, record("v2").eval_set);
}

#[test]
fn evaluations_are_kept_per_set_and_the_latest_is_read() {
    let store = Store::open(&scratch("evaluations")).unwrap();
    assert_eq!(store.evaluation("m", "v1", "set-a").unwrap(), None);
    store
        .record_evaluation("m", "v1", "set-a", &json!({"perplexity": 10.0}))
        .unwrap();
    store
        .record_evaluation("m", "v1", "set-a", &json!({"perplexity": 11.0}))
        .unwrap();
    store
        .record_evaluation("m", "v1", "set-b", &json!({"perplexity": 99.0}))
        .unwrap();
    assert_eq!(
        store.evaluation("m", "v1", "set-a").unwrap(),
        Some(json!({"perplexity": 11.0}))
    );
    assert_eq!(store.evaluation("m", "v2", "set-a").unwrap(), None);
    let rewrite = store.with(|c| c.execute("UPDATE evaluations SET report = '{}'", []));
    assert!(rewrite.is_err(), "evaluation results must be append-only");
}
