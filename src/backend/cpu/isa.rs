//! Which SIMD instruction set the kernels use, chosen once at run time.
//! `SWITCHYARD_CPU_ISA=avx512|avx2|scalar` forces a lower one (tests use it
//! to compare paths); asking for one the CPU lacks falls back with a log
//! line rather than crashing on an illegal instruction.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Scalar,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2+fma",
            Isa::Scalar => "scalar",
        }
    }

    /// The best the CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Whether this CPU can run `self`.
    pub fn supported(self) -> bool {
        let best = Isa::detect();
        matches!(
            (best, self),
            (_, Isa::Scalar) | (Isa::Avx512, _) | (Isa::Avx2, Isa::Avx2)
        )
    }
}

/// The ISA in use for this process.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = Isa::detect();
        let wanted = match std::env::var("SWITCHYARD_CPU_ISA").as_deref() {
            Ok("avx512") => Isa::Avx512,
            Ok("avx2") => Isa::Avx2,
            Ok("scalar") => Isa::Scalar,
            _ => best,
        };
        if wanted.supported() {
            wanted
        } else {
            tracing::warn!(
                wanted = wanted.name(),
                using = best.name(),
                "SWITCHYARD_CPU_ISA asks for an instruction set this CPU lacks"
            );
            best
        }
    })
}
