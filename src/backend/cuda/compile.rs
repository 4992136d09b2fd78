//! The kernels: `kernels/*.cu`, compiled as one program by NVRTC for the
//! device's compute capability at start-up. The PTX is cached on disk by
//! source hash, architecture and NVRTC version, so a restart loads it in
//! milliseconds; a machine without NVRTC can still use PTX compiled
//! elsewhere for the same source and architecture.

use crate::backend::quant::{WeightFormat, FORMATS};
use crate::backend::KvDtype;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Every kernel file, in compilation order (the prelude first).
const SOURCES: &[(&str, &str)] = &[
    ("prelude.cu", include_str!("../../../kernels/prelude.cu")),
    (
        "elementwise.cu",
        include_str!("../../../kernels/elementwise.cu"),
    ),
    ("gemv.cu", include_str!("../../../kernels/gemv.cu")),
    (
        "attention.cu",
        include_str!("../../../kernels/attention.cu"),
    ),
    ("sampling.cu", include_str!("../../../kernels/sampling.cu")),
];

/// The program NVRTC compiles: the numbers of the weight formats and KV
/// element types, then the files one after another, each under a `#line`
/// that makes compiler messages name the right file and line, then a GEMV
/// kernel per weight format. The tables come from Rust, so the kernels
/// and the host can never number a format differently.
pub fn program() -> String {
    let mut s = String::from("#line 1 \"generated: numbers\"\n");
    for d in FORMATS {
        s.push_str(&format!(
            "#define FMT_{} {}\n",
            tag(d.name),
            d.format as u32
        ));
    }
    for kv in KvDtype::ALL {
        s.push_str(&format!("#define KV_{} {}\n", tag(kv.name()), kv as u32));
    }
    for (name, text) in SOURCES {
        s.push_str(&format!("#line 1 \"kernels/{name}\"\n"));
        s.push_str(text);
        s.push('\n');
    }
    s.push_str("#line 1 \"generated: GEMV kernels\"\n");
    for d in FORMATS {
        s.push_str(&format!(
            "GEMV({}, FMT_{}, {})\n",
            gemv_name(d.format),
            tag(d.name),
            d.cuda_unit
        ));
    }
    s
}

/// The GEMV kernel of a weight format.
pub fn gemv_name(format: WeightFormat) -> String {
    format!("gemv_{}", format.name())
}

/// A name as the CUDA program spells its constants (`q4_k` → `Q4_K`).
fn tag(name: &str) -> String {
    name.to_ascii_uppercase()
}

/// The first 16 hex digits of the program's SHA-256.
pub fn program_hash() -> String {
    let digest = Sha256::digest(program().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The virtual architecture for a compute capability or a name given as
/// `sm_90`, `compute_90` or `90`.
pub fn arch_name(spec: &str) -> Result<String, String> {
    let digits = spec
        .strip_prefix("sm_")
        .or_else(|| spec.strip_prefix("compute_"))
        .unwrap_or(spec);
    if digits.len() >= 2 && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(format!("compute_{digits}"))
    } else {
        Err(format!(
            "`{spec}` is not an architecture (expected sm_80, compute_90 or 90)"
        ))
    }
}

/// NVRTC's version, or why it cannot be used.
pub fn nvrtc_version() -> Result<(i32, i32), String> {
    super::libs::preload();
    // SAFETY: presence is checked before any NVRTC symbol is touched.
    unsafe {
        if !cudarc::nvrtc::sys::is_culib_present() {
            return Err("NVRTC (libnvrtc.so.13) was not found".into());
        }
        let (mut major, mut minor) = (0, 0);
        cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor)
            .result()
            .map_err(|e| format!("nvrtcVersion: {e:?}"))?;
        Ok((major, minor))
    }
}

/// PTX for `arch` and where it came from.
pub struct Compiled {
    pub ptx: String,
    pub arch: String,
    /// "compiled by NVRTC 13.0 in 1.2 s", "cached (NVRTC 13.0)", …
    pub origin: String,
}

/// Compiles the program for `arch` (`compute_90`), or reads it from
/// `cache` (a folder) when an earlier run compiled the same source.
pub fn ptx(arch: &str, cache: Option<&Path>) -> Result<Compiled, String> {
    let hash = program_hash();
    match nvrtc_version() {
        Ok((major, minor)) => {
            let file = cache.map(|dir| dir.join(format!("{hash}-{arch}-nvrtc{major}.{minor}.ptx")));
            if let Some(ptx) = file
                .as_deref()
                .and_then(|f| std::fs::read_to_string(f).ok())
            {
                return Ok(Compiled {
                    ptx,
                    arch: arch.to_owned(),
                    origin: format!("cached (NVRTC {major}.{minor})"),
                });
            }
            let started = std::time::Instant::now();
            let ptx = compile(arch)?;
            if let Some(file) = &file {
                store(file, &ptx);
            }
            Ok(Compiled {
                ptx,
                arch: arch.to_owned(),
                origin: format!(
                    "compiled by NVRTC {major}.{minor} in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
            })
        }
        Err(why) => {
            let found = cache.and_then(|dir| any_cached(dir, &hash, arch));
            let Some(file) = found else {
                return Err(format!("{why}, and no PTX of this source is cached"));
            };
            let ptx =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            Ok(Compiled {
                ptx,
                arch: arch.to_owned(),
                origin: format!("cached in {} ({why})", file.display()),
            })
        }
    }
}

/// Compiles the program with NVRTC; the error carries NVRTC's log.
pub fn compile(arch: &str) -> Result<String, String> {
    use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions};
    let opts = CompileOptions {
        arch: Some(Box::leak(arch.to_owned().into_boxed_str())),
        options: vec!["--std=c++17".into(), "-default-device".into()],
        name: Some("switchyard.cu".into()),
        ..Default::default()
    };
    match compile_ptx_with_opts(program(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(CompileError::CompileError { log, .. }) => Err(format!(
            "the kernels do not compile for {arch}:\n{}",
            log.to_string_lossy()
        )),
        Err(e) => Err(format!("NVRTC failed for {arch}: {e}")),
    }
}

/// Writes through a temporary file, so a reader never sees half a file.
fn store(file: &Path, ptx: &str) {
    let Some(dir) = file.parent() else { return };
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&tmp, ptx))
        .and_then(|_| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        tracing::warn!(path = %file.display(), error = %e, "the PTX cache was not written");
    }
}

/// The newest cached PTX of this source and architecture, whatever NVRTC
/// made it.
fn any_cached(dir: &Path, hash: &str, arch: &str) -> Option<PathBuf> {
    let prefix = format!("{hash}-{arch}-");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".ptx")
        })
        .max_by_key(|e| e.file_name())
        .map(|e| e.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_are_named_as_nvrtc_wants_them() {
        assert_eq!(arch_name("sm_90").unwrap(), "compute_90");
        assert_eq!(arch_name("compute_80").unwrap(), "compute_80");
        assert_eq!(arch_name("89").unwrap(), "compute_89");
        assert!(arch_name("hopper").is_err());
        assert!(arch_name("sm_").is_err());
    }

    #[test]
    fn the_program_numbers_every_format_as_rust_does() {
        let p = program();
        for d in FORMATS {
            let define = format!("#define FMT_{} {}\n", tag(d.name), d.format as u32);
            assert!(p.contains(&define), "{define}");
            assert!(p.contains(&format!("GEMV({}, ", gemv_name(d.format))));
        }
        assert!(p.contains("#define KV_BF16 2\n"));
        for (name, text) in SOURCES {
            for line in text.lines() {
                let hand_written = line.starts_with("#define FMT_")
                    || line.starts_with("#define KV_")
                    || line.starts_with("GEMV(");
                assert!(!hand_written, "{name} restates a table: {line}");
            }
        }
    }

    #[test]
    fn the_program_names_every_file_and_has_no_includes() {
        let p = program();
        for (name, text) in SOURCES {
            assert!(p.contains(&format!("#line 1 \"kernels/{name}\"")));
            assert!(!text.contains("#include"), "{name} includes a header");
        }
        assert_eq!(program_hash().len(), 16);
    }

    #[test]
    fn cached_ptx_is_found_by_source_and_architecture() {
        let dir = std::env::temp_dir().join(format!("sy-ptx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hash = program_hash();
        std::fs::write(dir.join(format!("{hash}-compute_90-nvrtc13.0.ptx")), "a").unwrap();
        std::fs::write(dir.join("0000000000000000-compute_90-nvrtc13.0.ptx"), "b").unwrap();
        let found = any_cached(&dir, &hash, "compute_90").unwrap();
        assert_eq!(std::fs::read_to_string(found).unwrap(), "a");
        assert!(any_cached(&dir, &hash, "compute_80").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
