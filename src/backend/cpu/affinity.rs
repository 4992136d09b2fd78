//! Pinning compute workers to CPUs of their own. A worker that migrates
//! loses its L1/L2 (the weight panels and activation tiles the kernels keep
//! there) and may land on a core another worker already spins on. Linux
//! only; elsewhere, and whenever the kernel refuses, threads stay where the
//! scheduler puts them.

/// The CPUs this process may run on, one per physical core first (SMT
/// siblings share the units the kernels saturate), then the siblings.
/// Empty (no pinning) under `SWITCHYARD_PIN_THREADS=0`: on a machine whose
/// cores are busy with other work, a pinned thread cannot move off a core
/// that another process holds.
pub fn cpu_order() -> Vec<usize> {
    if std::env::var("SWITCHYARD_PIN_THREADS").is_ok_and(|v| v == "0") {
        return Vec::new();
    }
    #[cfg(target_os = "linux")]
    {
        linux::cpu_order()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Vec::new()
    }
}

/// Pins the calling thread to `cpu`; failure is only logged.
pub fn pin_current_thread(cpu: usize) {
    #[cfg(target_os = "linux")]
    linux::pin(cpu);
    #[cfg(not(target_os = "linux"))]
    let _ = cpu;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashSet;

    fn allowed() -> Vec<usize> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel
        // writes at most its size.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    fn core_of(cpu: usize) -> Option<(String, String)> {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
        Some((
            read("physical_package_id")?.trim().to_string(),
            read("core_id")?.trim().to_string(),
        ))
    }

    pub fn cpu_order() -> Vec<usize> {
        let cpus = allowed();
        let mut seen = HashSet::new();
        let (mut first, mut siblings) = (Vec::new(), Vec::new());
        for c in cpus {
            // Unknown topology: count the CPU as a core of its own.
            let core = core_of(c).unwrap_or_else(|| (String::new(), c.to_string()));
            if seen.insert(core) {
                first.push(c);
            } else {
                siblings.push(c);
            }
        }
        first.extend(siblings);
        first
    }

    pub fn pin(cpu: usize) {
        // SAFETY: as above; CPU_SET ignores CPUs past the set's size.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            tracing::debug!(cpu, error = %std::io::Error::last_os_error(), "could not pin a compute thread");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_lists_each_allowed_cpu_once() {
        let order = super::cpu_order();
        let unique: std::collections::HashSet<_> = order.iter().collect();
        assert_eq!(unique.len(), order.len());
        if cfg!(target_os = "linux") {
            assert!(!order.is_empty());
        }
    }
}
