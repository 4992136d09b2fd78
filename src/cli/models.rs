//! `switchyard models …`: `pull` fetches artifacts locally; the others
//! talk to a running server's admin API.

use super::admin_client::{print_json, AdminClient};
use super::CliResult;
use crate::store;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Fetch a known model into $SWITCHYARD_HOME/models and verify it;
    /// prints the file's path last.
    Pull {
        /// e.g. smollm2-135m-instruct
        name: String,
    },
    /// Register an immutable version of MODEL from an artifact on the
    /// server's disk.
    Register {
        model: String,
        version: String,
        /// A GGUF file or a Hugging Face directory.
        #[arg(long)]
        artifact: String,
        /// The digest the artifact must have.
        #[arg(long)]
        sha256: Option<String>,
        /// Where the artifact came from.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        notes: Option<String>,
        /// Golden prompts as JSON: [{"prompt": …, "max_tokens": …, "expect": …}].
        #[arg(long)]
        warmup: Option<String>,
        /// An evaluation score (higher is better) for canary analysis.
        #[arg(long)]
        eval_score: Option<f64>,
        /// Re-encode the weights at load: q8_0, q4_0, q4_1, q5_0, q5_1,
        /// q4_k, q5_k, q6_k, f16, bf16, f32.
        #[arg(long)]
        quantize: Option<String>,
        /// The version's evaluation set, a JSON file: {"prompts": [{prompt,
        /// max_tokens?, expect?, answer?}], "perplexity": {"text": PATH,
        /// "ctx": 256, "chunks": 8}, "max_perplexity_increase": 0.02}.
        /// Deploy and promote refuse a version that regresses beyond it.
        #[arg(long)]
        eval_set: Option<std::path::PathBuf>,
        #[command(flatten)]
        server: Server,
    },
    /// Run VERSION's evaluation set now (loading it if needed) and print
    /// its golden prompts passed and perplexity.
    Eval {
        model: String,
        version: String,
        #[command(flatten)]
        server: Server,
    },
    /// Every model, its deployment and its versions.
    List {
        #[command(flatten)]
        server: Server,
    },
    /// One model, or one version of it.
    Show {
        model: String,
        version: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Load and warm up VERSION, then make it MODEL's stable version.
    Deploy {
        model: String,
        version: String,
        #[command(flatten)]
        server: Server,
    },
    /// Send a share of MODEL's requests (sticky per user) to VERSION:
    /// --percent P, or --steps 5,25,50,100 analysed window by window, rolled
    /// back on a failed window, stepped up and promoted on healthy ones.
    Canary {
        model: String,
        version: String,
        #[arg(long, conflicts_with = "steps")]
        percent: Option<f64>,
        #[arg(long, value_delimiter = ',')]
        steps: Option<Vec<f64>>,
        /// Analysis thresholds as JSON, e.g. {"window_s": 30,
        /// "min_requests": 20, "max_error_ratio": 0.05}.
        #[arg(long)]
        analysis: Option<String>,
        /// Stop at the last step instead of promoting.
        #[arg(long)]
        no_auto_promote: bool,
        #[command(flatten)]
        server: Server,
    },
    /// Copy PERCENT of MODEL's requests to VERSION, its answers discarded
    /// and its metrics recorded; --percent 0 stops.
    Shadow {
        model: String,
        version: Option<String>,
        #[arg(long)]
        percent: f64,
        #[command(flatten)]
        server: Server,
    },
    /// Make MODEL's canary its stable version.
    Promote {
        model: String,
        #[command(flatten)]
        server: Server,
    },
    /// Back to the previous stable version (or --to VERSION); with a
    /// canary running, take the canary out.
    Rollback {
        model: String,
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        server: Server,
    },
    /// Drain a version no route uses and free its memory.
    Unload {
        model: String,
        version: String,
        #[command(flatten)]
        server: Server,
    },
    /// The audit trail: who did what, when, with what result.
    History {
        model: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        server: Server,
    },
}

#[derive(Args)]
pub struct Server {
    /// The running server.
    #[arg(
        long,
        env = "SWITCHYARD_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: ModelsCommand) -> CliResult {
    match cmd {
        ModelsCommand::Pull { name } => pull(&name),
        ModelsCommand::Register {
            model,
            version,
            artifact,
            sha256,
            source,
            notes,
            warmup,
            eval_score,
            quantize,
            eval_set,
            server,
        } => {
            let eval_set: Option<Value> = match eval_set {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("--eval-set {}: {e}", path.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| format!("--eval-set {}: {e}", path.display()))?,
                    )
                }
                None => None,
            };
            let warmup: Option<Value> = match warmup {
                Some(text) => {
                    Some(serde_json::from_str(&text).map_err(|e| format!("--warmup: {e}"))?)
                }
                None => None,
            };
            // The server reads the path on its own disk; a relative path
            // means the caller's directory when the server runs here too.
            let artifact = std::fs::canonicalize(&artifact)
                .map_or(artifact, |p| p.to_string_lossy().into_owned());
            let body = json!({
                "version": version, "artifact": artifact, "sha256": sha256,
                "source": source, "notes": notes, "warmup": warmup, "eval_score": eval_score,
                "quantize": quantize, "eval_set": eval_set,
            });
            let v = client(&server)?.post(&format!("/models/{model}/versions"), &body)?;
            show(&server, &v, |v| {
                format!(
                    "registered {model}@{version}: {} ({}, sha256 {})",
                    text(v, "artifact"),
                    text(v, "quantization"),
                    text(v, "sha256")
                )
            })
        }
        ModelsCommand::Eval {
            model,
            version,
            server,
        } => {
            let v = client(&server)?.post(
                &format!("/models/{model}/versions/{version}/eval"),
                &json!({}),
            )?;
            show(&server, &v, |v| {
                let ppl = v
                    .get("perplexity")
                    .and_then(Value::as_f64)
                    .map_or(String::new(), |p| format!(", perplexity {p:.4}"));
                let mut line = format!(
                    "{model}@{version}: {}/{} golden prompts{ppl} ({:.1} s)",
                    v.get("prompts_passed").and_then(Value::as_u64).unwrap_or(0),
                    v.get("prompts_total").and_then(Value::as_u64).unwrap_or(0),
                    v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0)
                );
                for f in v
                    .get("failures")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    line.push_str(&format!("\n  {}", f.as_str().unwrap_or("")));
                }
                line
            })
        }
        ModelsCommand::List { server } => {
            let v = client(&server)?.get("/models")?;
            show(&server, &v, list_table)
        }
        ModelsCommand::Show {
            model,
            version,
            server,
        } => {
            let path = match &version {
                Some(ver) => format!("/models/{model}/versions/{ver}"),
                None => format!("/models/{model}"),
            };
            let v = client(&server)?.get(&path)?;
            // A record is best read whole, with or without --json.
            print_json(&v)
        }
        ModelsCommand::Deploy {
            model,
            version,
            server,
        } => deployment(
            &server,
            &format!("/models/{model}/deploy"),
            json!({"version": version}),
        ),
        ModelsCommand::Canary {
            model,
            version,
            percent,
            steps,
            analysis,
            no_auto_promote,
            server,
        } => {
            let mut body = json!({"version": version, "percent": percent, "steps": steps});
            if let Some(text) = analysis {
                body["analysis"] =
                    serde_json::from_str(&text).map_err(|e| format!("--analysis: {e}"))?;
            }
            if no_auto_promote {
                body["auto_promote"] = json!(false);
            }
            deployment(&server, &format!("/models/{model}/canary"), body)
        }
        ModelsCommand::Shadow {
            model,
            version,
            percent,
            server,
        } => deployment(
            &server,
            &format!("/models/{model}/shadow"),
            json!({"version": version, "percent": percent}),
        ),
        ModelsCommand::Promote { model, server } => {
            deployment(&server, &format!("/models/{model}/promote"), json!({}))
        }
        ModelsCommand::Rollback { model, to, server } => deployment(
            &server,
            &format!("/models/{model}/rollback"),
            json!({"version": to}),
        ),
        ModelsCommand::Unload {
            model,
            version,
            server,
        } => {
            let v = client(&server)?.post(
                &format!("/models/{model}/unload"),
                &json!({"version": version}),
            )?;
            show(&server, &v, |v| {
                format!(
                    "{model}@{version}: {}",
                    v.pointer("/outcome/state")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                )
            })
        }
        ModelsCommand::History {
            model,
            limit,
            server,
        } => {
            let mut path = format!("/audit?limit={limit}");
            if let Some(m) = &model {
                path.push_str(&format!("&model={m}"));
            }
            let v = client(&server)?.get(&path)?;
            show(&server, &v, history_table)
        }
    }
}

fn pull(name: &str) -> CliResult {
    let outcome = store::pull(name, &mut std::io::stderr()).map_err(|e| e.to_string())?;
    if let store::PullOutcome::Present(_) = outcome {
        eprintln!("{name}: already present, nothing to do");
    }
    println!("{}", outcome.path().display());
    Ok(())
}

fn client(server: &Server) -> Result<AdminClient, String> {
    AdminClient::new(&server.server)
}

fn show(server: &Server, v: &Value, summary: impl Fn(&Value) -> String) -> CliResult {
    if server.json {
        print_json(v)
    } else {
        println!("{}", summary(v));
        Ok(())
    }
}

fn deployment(server: &Server, path: &str, body: Value) -> CliResult {
    let v = client(server)?.post(path, &body)?;
    show(server, &v, |d| {
        let mut line = format!("{}: stable {}", text(d, "model"), text(d, "stable"));
        if let Some(p) = d.get("previous").and_then(Value::as_str) {
            line.push_str(&format!(", previous {p}"));
        }
        if let Some(c) = d.get("canary").and_then(Value::as_str) {
            let pct = d
                .get("canary_percent")
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            line.push_str(&format!(", canary {c} at {pct}%"));
        }
        line
    })
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn list_table(v: &Value) -> String {
    let mut out = format!(
        "{:<24} {:<16} {:<16} {:<10} {}",
        "MODEL", "STABLE", "CANARY", "VERSIONS", "LOADED"
    );
    for m in v["data"].as_array().into_iter().flatten() {
        let d = &m["deployment"];
        let canary = match d.get("canary").and_then(Value::as_str) {
            Some(c) => format!("{c} {}%", d["canary_percent"]),
            None => "-".into(),
        };
        let loaded: Vec<String> = m["loaded"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{}({})", text(l, "version"), text(l, "state")))
            .collect();
        out.push_str(&format!(
            "\n{:<24} {:<16} {:<16} {:<10} {}",
            text(m, "model"),
            d.get("stable").and_then(Value::as_str).unwrap_or("-"),
            canary,
            m["versions"].as_array().map_or(0, Vec::len),
            loaded.join(" ")
        ));
    }
    out
}

fn history_table(v: &Value) -> String {
    let mut out = format!(
        "{:<24} {:<24} {:<9} {:<20} {:<6} {}",
        "WHEN (UTC)", "WHO", "ACTION", "MODEL@VERSION", "RESULT", "DETAIL"
    );
    for e in v["data"].as_array().into_iter().flatten() {
        let at = e["at"].as_i64().unwrap_or(0);
        let target = match e.get("version").and_then(Value::as_str) {
            Some(ver) => format!("{}@{ver}", text(e, "model")),
            None => text(e, "model").to_owned(),
        };
        out.push_str(&format!(
            "\n{:<24} {:<24} {:<9} {:<20} {:<6} {}",
            store::dates::utc(at),
            text(e, "actor"),
            text(e, "action"),
            target,
            text(e, "result"),
            text(e, "detail")
        ));
    }
    out
}
