//! Which SIMD instruction set the kernels use, chosen once at run time.
//! `SWITCHYARD_CPU_ISA=avx512-vnni|avx512|avx-vnni|avx2|scalar` forces a
//! lower one (tests use it to compare paths); asking for one the CPU lacks
//! falls back with a log line rather than crashing on an illegal
//! instruction.
//!
//! The VNNI levels only change the integer kernels of quantized weights
//! (`qgemm.rs`); float kernels run at the level below them (`float`).

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512 with 512-bit `vpdpbusd`.
    Avx512Vnni,
    Avx512,
    /// AVX2 with the VEX-encoded 256-bit `vpdpbusd`.
    AvxVnni,
    Avx2,
    Scalar,
}

impl Isa {
    /// Every level, best first.
    pub const ALL: [Isa; 5] = [
        Isa::Avx512Vnni,
        Isa::Avx512,
        Isa::AvxVnni,
        Isa::Avx2,
        Isa::Scalar,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512-vnni",
            Isa::Avx512 => "avx512",
            Isa::AvxVnni => "avx-vnni",
            Isa::Avx2 => "avx2+fma",
            Isa::Scalar => "scalar",
        }
    }

    fn from_name(name: &str) -> Option<Isa> {
        match name {
            "avx2" => Some(Isa::Avx2),
            _ => Isa::ALL.into_iter().find(|i| i.name() == name),
        }
    }

    /// The level the float kernels run at: VNNI adds integer dot products
    /// only.
    pub fn float(self) -> Isa {
        match self {
            Isa::Avx512Vnni => Isa::Avx512,
            Isa::AvxVnni => Isa::Avx2,
            other => other,
        }
    }

    /// The best the CPU supports.
    pub fn detect() -> Isa {
        Isa::ALL
            .into_iter()
            .find(|i| i.supported())
            .unwrap_or(Isa::Scalar)
    }

    /// Whether this CPU can run `self`.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            let avx512 = avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl");
            match self {
                Isa::Avx512Vnni => avx512 && is_x86_feature_detected!("avx512vnni"),
                Isa::Avx512 => avx512,
                Isa::AvxVnni => avx2 && is_x86_feature_detected!("avxvnni"),
                Isa::Avx2 => avx2,
                Isa::Scalar => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }
}

/// The ISA in use for this process.
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let best = Isa::detect();
        let wanted = std::env::var("SWITCHYARD_CPU_ISA")
            .ok()
            .and_then(|n| Isa::from_name(&n))
            .unwrap_or(best);
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
