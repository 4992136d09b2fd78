//! The host emulator (tests only): `kernels/*.cu` compiled by the C++
//! compiler against `cuda_host.h` into a shared library, loaded, and
//! driven like a device whose memory is host memory. It runs the very
//! source NVRTC compiles, so the CUDA backend and its kernels are checked
//! against their CPU twins on every machine, GPU or not.

use super::Failure;
use sha2::{Digest, Sha256};
use std::alloc::Layout;
use std::ffi::{c_char, c_void, CString};
use std::path::{Path, PathBuf};

type Launch = unsafe extern "C" fn(*const c_char, u32, u32, u32, u32, u32, *mut *mut c_void) -> i32;

pub struct Emulator {
    launch: Launch,
    _lib: libloading::Library,
}

/// Device allocations are aligned as cudaMalloc's are.
const ALIGN: usize = 256;

impl Emulator {
    /// Builds (or finds, by source hash, in `dir`) the emulated kernels
    /// and loads them.
    pub fn build(dir: &Path) -> Result<Emulator, String> {
        let unit = translation_unit();
        let hash: String = Sha256::digest(unit.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        let lib = dir.join(format!("libkernels-{hash}.so"));
        if !lib.is_file() {
            compile(dir, &unit, &lib)?;
        }
        // SAFETY: a library built just now from our own sources.
        let loaded = unsafe { libloading::Library::new(&lib) }
            .map_err(|e| format!("{}: {e}", lib.display()))?;
        // SAFETY: `emu_launch` has the signature of `Launch` (below).
        let launch = unsafe { loaded.get::<Launch>(b"emu_launch\0") }
            .map(|f| *f)
            .map_err(|e| format!("emu_launch: {e}"))?;
        Ok(Emulator {
            launch,
            _lib: loaded,
        })
    }

    pub fn alloc(&self, bytes: usize) -> u64 {
        match Layout::from_size_align(bytes.max(1), ALIGN) {
            // SAFETY: a non-zero size; freed by `free` with the same layout.
            Ok(layout) => unsafe { std::alloc::alloc_zeroed(layout) as u64 },
            Err(_) => 0,
        }
    }

    pub fn free(&self, ptr: u64, bytes: usize) {
        if let Ok(layout) = Layout::from_size_align(bytes.max(1), ALIGN) {
            // SAFETY: allocated by `alloc` with this layout.
            unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
        }
    }

    pub fn launch(
        &self,
        name: &str,
        grid: (u32, u32, u32),
        block: u32,
        shared: u32,
        args: &mut [u64],
    ) -> Result<(), Failure> {
        let cname = CString::new(name).map_err(|e| Failure(e.to_string()))?;
        let mut params: Vec<*mut c_void> = args
            .iter_mut()
            .map(|a| a as *mut u64 as *mut c_void)
            .collect();
        // SAFETY: as a device launch: the slots hold the kernel's
        // parameters in order, and outlive the call.
        let rc = unsafe {
            (self.launch)(
                cname.as_ptr(),
                grid.0,
                grid.1,
                grid.2,
                block,
                shared,
                params.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(Failure(format!("the emulator has no kernel {name}")));
        }
        Ok(())
    }
}

/// The emulation layer, the kernels, and a launcher that finds a kernel by
/// name and calls it with its parameters unpacked from the slots.
fn translation_unit() -> String {
    let mut s = String::from(include_str!("cuda_host.h"));
    s.push_str(&super::compile::program());
    s.push_str(
        r#"
template <typename... A, size_t... I>
void emu_call(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*(A*)args[I]...);
}
template <typename... A>
void emu_invoke(void (*f)(A...), void** args) {
    emu_call(f, args, std::index_sequence_for<A...>{});
}
extern "C" int emu_launch(const char* kernel, unsigned gx, unsigned gy, unsigned gz,
                          unsigned bx, unsigned shared, void** args) {
"#,
    );
    for name in super::kernel_names() {
        s.push_str(&format!(
            "    if (!std::strcmp(kernel, \"{name}\")) return emu::run([](void** a) {{ emu_invoke({name}, a); }}, gx, gy, gz, bx, shared, args);\n"
        ));
    }
    s.push_str("    return -1;\n}\n");
    s
}

fn compile(dir: &Path, unit: &str, lib: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pid = std::process::id();
    let src: PathBuf = dir.join(format!("kernels-{pid}.cpp"));
    let tmp = dir.join(format!("kernels-{pid}.so.tmp"));
    std::fs::write(&src, unit).map_err(|e| format!("{}: {e}", src.display()))?;
    let out = std::process::Command::new("c++")
        .args(["-std=c++20", "-O1", "-shared", "-fPIC", "-w", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .map_err(|e| format!("running c++ (the emulator needs a C++ compiler): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the kernels do not compile for the emulator:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, lib).map_err(|e| format!("{}: {e}", lib.display()))?;
    let _ = std::fs::remove_file(&src);
    Ok(())
}
