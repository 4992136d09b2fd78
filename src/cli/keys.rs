//! `switchyard keys …`: API keys, tenant limits and usage, on the state
//! database directly (the first admin key has to come from somewhere). A
//! running server on the same database picks changes up within seconds.

use super::CliResult;
use crate::policy::{self, KeySpec};
use crate::store::{self, Store, TenantLimits};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct Db {
    /// The state database (default: $SWITCHYARD_HOME/switchyard.db), the
    /// one `serve --state-db` uses.
    #[arg(long)]
    state_db: Option<PathBuf>,
}

impl Db {
    fn open(&self) -> Result<Store, String> {
        let path = self
            .state_db
            .clone()
            .unwrap_or_else(|| store::home().join("switchyard.db"));
        Store::open(&path).map_err(|e| e.to_string())
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret, once: only its hash is kept.
    Create {
        #[command(flatten)]
        spec: KeySpec,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Every key (revoked ones with --all), without secrets.
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Revoke a key by id or name.
    Revoke {
        key: String,
        #[command(flatten)]
        db: Db,
    },
    /// Replace a key's secret (same name, role and limits); the old one
    /// stops working.
    Rotate {
        key: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Set a tenant's limits, shared by all its keys.
    Tenant {
        tenant: String,
        #[arg(long)]
        rpm: Option<u64>,
        #[arg(long)]
        tpm: Option<u64>,
        #[arg(long)]
        max_concurrent: Option<u64>,
        #[command(flatten)]
        db: Db,
    },
    /// Prompt and completion tokens per key and tenant per UTC day, as
    /// servers wrote them (every few seconds).
    Usage {
        /// The first day (YYYY-MM-DD; default today).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Db,
    },
}

fn actor() -> String {
    let login = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("{login}@cli")
}

pub fn run(c: KeysCommand) -> CliResult {
    let err = |e: policy::PolicyError| e.to_string();
    match c {
        KeysCommand::Create { spec, json, db } => {
            let made = policy::create_key(&db.open()?, &spec, &actor()).map_err(err)?;
            print_new(&made, json)
        }
        KeysCommand::List { all, json, db } => {
            let keys: Vec<_> = db
                .open()?
                .keys()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|k| all || k.revoked_at.is_none())
                .collect();
            if json {
                return print(&keys);
            }
            println!(
                "{:<16} {:<20} {:<9} {:<12} {:>7} {:>9} {:>5}  state",
                "id", "name", "role", "tenant", "rpm", "tpm", "conc"
            );
            for k in keys {
                let n = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(_), _) => "revoked".to_owned(),
                    (None, Some(e)) if e <= store::now_ms() => "expired".to_owned(),
                    (None, Some(e)) => format!("expires {}", store::dates::day_of(e)),
                    (None, None) => "live".to_owned(),
                };
                println!(
                    "{:<16} {:<20} {:<9} {:<12} {:>7} {:>9} {:>5}  {state}",
                    k.id,
                    k.name,
                    k.role,
                    k.tenant.as_deref().unwrap_or("-"),
                    n(k.rpm),
                    n(k.tpm),
                    n(k.max_concurrent)
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { key, db } => {
            let k = policy::revoke_key(&db.open()?, &key, &actor()).map_err(err)?;
            println!("revoked {} ({})", k.id, k.name);
            Ok(())
        }
        KeysCommand::Rotate { key, json, db } => {
            let made = policy::rotate_key(&db.open()?, &key, &actor()).map_err(err)?;
            print_new(&made, json)
        }
        KeysCommand::Tenant {
            tenant,
            rpm,
            tpm,
            max_concurrent,
            db,
        } => {
            let limits = TenantLimits {
                tenant,
                rpm,
                tpm,
                max_concurrent,
            };
            policy::set_tenant_limits(&db.open()?, &limits, &actor()).map_err(err)?;
            print(&limits)
        }
        KeysCommand::Usage { since, json, db } => {
            let report = policy::usage_report(&db.open()?, since.as_deref()).map_err(err)?;
            if json {
                return print(&report);
            }
            println!(
                "{:<10} {:<12} {:<16} {:>9} {:>14} {:>18}",
                "day", "tenant", "key", "requests", "prompt_tokens", "completion_tokens"
            );
            for u in &report.keys {
                println!(
                    "{:<10} {:<12} {:<16} {:>9} {:>14} {:>18}",
                    u.day, u.tenant, u.key_id, u.requests, u.prompt_tokens, u.completion_tokens
                );
            }
            for u in &report.tenants {
                println!(
                    "{:<10} {:<12} {:<16} {:>9} {:>14} {:>18}",
                    u.day, u.tenant, "(tenant)", u.requests, u.prompt_tokens, u.completion_tokens
                );
            }
            Ok(())
        }
    }
}

fn print_new(made: &policy::NewKey, json: bool) -> CliResult {
    if json {
        return print(made);
    }
    println!("{}", made.secret);
    eprintln!(
        "created {} ({}, role {}); the secret above is shown once: store it now",
        made.record.id, made.record.name, made.record.role
    );
    Ok(())
}

fn print(v: &impl serde::Serialize) -> CliResult {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
    );
    Ok(())
}
