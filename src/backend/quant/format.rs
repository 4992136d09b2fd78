//! The weight formats, in one descriptor table: each format's name, its
//! ggml type id, the llama.cpp file type of a file all in it, its block
//! shape, and how a CUDA GEMV lane walks its rows. The enum, the list of
//! names every command accepts, the GGUF type mapping, the file type a
//! quantized file declares and the `FMT_*` numbers and GEMV kernels of
//! the CUDA program (emitted into it by `cuda/compile.rs`) all come from
//! here; nothing restates them.

/// Values per block of the 32-value formats; every format's rows are cut
/// in whole blocks of `block_elems`, a multiple of it.
pub const BLOCK: usize = 32;

/// Values per super-block of the K-quants.
pub const QK_K: usize = 256;

/// What is known of one format.
#[derive(Debug)]
pub struct Descriptor {
    pub format: WeightFormat,
    /// Lower-case (`q4_k`): what commands and the API accept, and the tag
    /// of its CUDA kernel (`gemv_q4_k`, `FMT_Q4_K`).
    pub name: &'static str,
    /// `GGML_TYPE_*`, as GGUF files name tensor types.
    pub ggml_type: u32,
    /// llama.cpp's `llama_ftype` for a file whose matrices are all in this
    /// format (the pure `_S` variants of the K-quants).
    pub file_type: u32,
    /// Values per block, and bytes per block.
    pub block_elems: usize,
    pub block_bytes: usize,
    /// Values a CUDA GEMV lane reads per step: a quantized group of 32,
    /// or 8 dense values.
    pub cuda_unit: usize,
}

macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, ggml $ggml:literal, file_type $ft:literal,
       block ($elems:expr, $bytes:literal), cuda_unit $unit:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum WeightFormat {
            $($(#[$doc])* $variant,)*
        }

        /// Every format, in the enum's order.
        pub const FORMATS: &[Descriptor] = &[$(Descriptor {
            format: WeightFormat::$variant,
            name: $name,
            ggml_type: $ggml,
            file_type: $ft,
            block_elems: $elems,
            block_bytes: $bytes,
            cuda_unit: $unit,
        },)*];
    };
}

formats! {
    F32 = "f32", ggml 0, file_type 0, block (BLOCK, 128), cuda_unit 8;
    F16 = "f16", ggml 1, file_type 1, block (BLOCK, 64), cuda_unit 8;
    Bf16 = "bf16", ggml 30, file_type 32, block (BLOCK, 64), cuda_unit 8;
    /// 32 values: f16 scale, 32 × i8. value = q·d
    Q8_0 = "q8_0", ggml 8, file_type 7, block (BLOCK, 34), cuda_unit 32;
    /// 32 values: f16 scale, 16 bytes of nibbles. value = (q − 8)·d
    Q4_0 = "q4_0", ggml 2, file_type 2, block (BLOCK, 18), cuda_unit 32;
    /// 32 values: f16 scale, f16 min, 16 bytes of nibbles. value = q·d + m
    Q4_1 = "q4_1", ggml 3, file_type 3, block (BLOCK, 20), cuda_unit 32;
    /// 32 values: f16 scale, 32 high bits, 16 bytes of nibbles.
    /// value = (q − 16)·d
    Q5_0 = "q5_0", ggml 6, file_type 8, block (BLOCK, 22), cuda_unit 32;
    /// 32 values: f16 scale, f16 min, 32 high bits, nibbles. value = q·d + m
    Q5_1 = "q5_1", ggml 7, file_type 9, block (BLOCK, 24), cuda_unit 32;
    /// 256 values in 8 groups of 32: f16 d and dmin, 6-bit scale and min
    /// per group, nibbles. value = d·sc·q − dmin·m
    Q4K = "q4_k", ggml 12, file_type 14, block (QK_K, 144), cuda_unit 32;
    /// Q4_K with a fifth bit per value.
    Q5K = "q5_k", ggml 13, file_type 16, block (QK_K, 176), cuda_unit 32;
    /// 256 values in 16 groups of 16: 6-bit values, an i8 scale per
    /// group, f16 d. value = d·sc·(q − 32)
    Q6K = "q6_k", ggml 14, file_type 18, block (QK_K, 210), cuda_unit 32;
}

impl WeightFormat {
    /// Everything the table says of this format.
    pub const fn describe(self) -> &'static Descriptor {
        &FORMATS[self as usize]
    }

    /// Every format, in the table's order.
    pub fn all() -> impl Iterator<Item = WeightFormat> {
        FORMATS.iter().map(|d| d.format)
    }

    /// Values per block.
    pub const fn block_elems(self) -> usize {
        self.describe().block_elems
    }

    /// Bytes of one block (`block_elems` values).
    pub const fn block_bytes(self) -> usize {
        self.describe().block_bytes
    }

    /// Bytes of a row of `cols` values (a whole number of blocks).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_elems() * self.block_bytes()
    }

    /// Whether values are stored as integers with per-block scales.
    pub fn is_quantized(self) -> bool {
        !matches!(
            self,
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16
        )
    }

    pub fn name(self) -> &'static str {
        self.describe().name
    }

    /// By its lower-case name (`q4_0`, `bf16`, `q4_k` …).
    pub fn from_name(name: &str) -> Option<Self> {
        FORMATS.iter().find(|d| d.name == name).map(|d| d.format)
    }

    /// By name, or an error that lists the names there are.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::from_name(name).ok_or_else(|| format!("`{name}` is not one of {}", Self::names()))
    }

    /// Every name, comma-separated: the list commands and errors give.
    pub fn names() -> String {
        let names: Vec<&str> = FORMATS.iter().map(|d| d.name).collect();
        names.join(", ")
    }

    /// The format of a GGUF tensor type, for the types the kernels read.
    pub fn from_ggml(id: u32) -> Option<Self> {
        FORMATS.iter().find(|d| d.ggml_type == id).map(|d| d.format)
    }

    /// The format a row of `cols` values is stored in when `self` was
    /// asked for. K-quants need rows of whole 256-value super-blocks; for
    /// other widths (SmolLM2's 576, Qwen2.5-0.5B's 896) llama.cpp's
    /// quantizer falls back to a 32-value format of about the same size,
    /// and so do we: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0.
    pub fn for_row_width(self, cols: usize) -> WeightFormat {
        if cols.is_multiple_of(self.block_elems()) {
            return self;
        }
        match self {
            WeightFormat::Q4K => WeightFormat::Q5_0,
            WeightFormat::Q5K => WeightFormat::Q5_1,
            WeightFormat::Q6K => WeightFormat::Q8_0,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_enum_order_and_its_keys_are_unique() {
        for (i, d) in FORMATS.iter().enumerate() {
            assert_eq!(d.format as usize, i, "{}", d.name);
            assert_eq!(d.format.describe().name, d.name);
            assert_eq!(WeightFormat::from_name(d.name), Some(d.format));
            assert_eq!(WeightFormat::from_ggml(d.ggml_type), Some(d.format));
            let unique = |key: &dyn Fn(&Descriptor) -> String| {
                FORMATS.iter().filter(|o| key(o) == key(d)).count() == 1
            };
            assert!(unique(&|o| o.ggml_type.to_string()), "{}", d.name);
            assert!(unique(&|o| o.file_type.to_string()), "{}", d.name);
            assert!(d.block_elems.is_multiple_of(BLOCK));
            assert!(d.block_elems.is_multiple_of(d.cuda_unit));
        }
        assert_eq!(WeightFormat::parse("q4_k"), Ok(WeightFormat::Q4K));
        let e = WeightFormat::parse("q3_k").unwrap_err();
        assert!(e.contains("`q3_k`") && e.ends_with("q5_k, q6_k"), "{e}");
    }
}
