//! Finding CUDA's libraries. cudarc opens them by name through the
//! dynamic loader; a library that is installed but not on the loader's
//! path (a toolkit under /usr/local/cuda, a Python wheel's `nvidia/`
//! folder) is opened here by its full path first, after which opening it
//! by name finds the copy already loaded.

use std::path::{Path, PathBuf};

/// The NVRTC and cuBLAS libraries of CUDA 13, in the order they must be
/// opened (a library after those it needs).
const LIBRARIES: &[&str] = &[
    "libnvrtc-builtins.so.13.0",
    "libnvrtc.so.13",
    "libcublasLt.so.13",
    "libcublas.so.13",
];

/// Folders to look in, after `SWITCHYARD_CUDA_LIBS` (colon-separated).
/// A `*` stands for any one folder name.
const FOLDERS: &[&str] = &[
    "$CUDA_PATH/lib64",
    "$CUDA_HOME/lib64",
    "/usr/local/cuda/lib64",
    "/usr/local/cuda/targets/x86_64-linux/lib",
    "/usr/local/nvidia/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/local/lib/python3*/dist-packages/nvidia/cu13/lib",
    "/usr/local/lib/python3*/site-packages/nvidia/cu13/lib",
    "/opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib",
];

/// Opens every library of [`LIBRARIES`] found in the folders, once per
/// process; returns the paths opened (for doctor's report).
pub fn preload() -> &'static [PathBuf] {
    static OPENED: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();
    OPENED.get_or_init(|| {
        let folders = folders();
        let mut opened = Vec::new();
        for name in LIBRARIES {
            let Some(path) = folders.iter().map(|f| f.join(name)).find(|p| p.is_file()) else {
                continue;
            };
            // SAFETY: these are CUDA's own libraries; their initialisers
            // only register themselves.
            match unsafe { libloading::Library::new(&path) } {
                Ok(lib) => {
                    // Kept open for the life of the process, as cudarc keeps
                    // its own handles.
                    std::mem::forget(lib);
                    opened.push(path);
                }
                Err(e) => tracing::debug!(path = %path.display(), error = %e, "not opened"),
            }
        }
        opened
    })
}

fn folders() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::env::var("SWITCHYARD_CUDA_LIBS")
        .map(|v| {
            v.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default();
    for pattern in FOLDERS {
        let Some(expanded) = expand_env(pattern) else {
            continue;
        };
        out.extend(glob(Path::new(&expanded)));
    }
    out
}

/// `$NAME/rest` with NAME's value; None when it is unset.
fn expand_env(pattern: &str) -> Option<String> {
    let Some(rest) = pattern.strip_prefix('$') else {
        return Some(pattern.to_owned());
    };
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    Some(format!("{value}/{tail}"))
}

/// The existing folders a pattern with `*` components names.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for part in pattern.components().skip(1) {
        let part = part.as_os_str().to_string_lossy();
        let mut next = Vec::new();
        for dir in &found {
            if part.contains('*') {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let (head, tail) = part.split_once('*').unwrap_or((&part, ""));
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(head) && name.ends_with(tail) && e.path().is_dir() {
                        next.push(e.path());
                    }
                }
            } else {
                let p = dir.join(&*part);
                if p.exists() {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_expands_stars_to_existing_folders_only() {
        let root = std::env::temp_dir().join(format!("sy-glob-{}", std::process::id()));
        for d in [
            "opt/a/.venv/lib/python3.12",
            "opt/b/.venv/lib/python3.11",
            "opt/c",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let pattern = root.join("opt/*/.venv/lib/python3*");
        let found = glob(&pattern);
        assert_eq!(
            found,
            vec![
                root.join("opt/a/.venv/lib/python3.12"),
                root.join("opt/b/.venv/lib/python3.11")
            ]
        );
        assert!(glob(&root.join("opt/*/missing")).is_empty());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn unset_variables_drop_their_folder() {
        assert_eq!(expand_env("/usr/lib").as_deref(), Some("/usr/lib"));
        assert_eq!(expand_env("$SWITCHYARD_SURELY_UNSET_VAR/lib64"), None);
    }
}
