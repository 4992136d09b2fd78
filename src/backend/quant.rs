//! Weight storage formats the kernels understand, and their scalar
//! dequantization: the reference every SIMD (and later CUDA) kernel is
//! tested against. Block layouts are ggml's, so GGUF tensors are used as
//! they lie in the file.

use half::{bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    Bf16,
    /// 32 values: f16 scale, 32 × i8. value = q·d
    Q8_0,
    /// 32 values: f16 scale, 16 bytes of nibbles. value = (q − 8)·d
    Q4_0,
    /// 32 values: f16 scale, f16 min, 16 bytes of nibbles. value = q·d + m
    Q4_1,
}

/// Elements per block for every format, so rows are cut in whole blocks.
pub const BLOCK: usize = 32;

impl WeightFormat {
    /// Bytes of one 32-element block.
    pub const fn block_bytes(self) -> usize {
        match self {
            WeightFormat::F32 => 128,
            WeightFormat::F16 | WeightFormat::Bf16 => 64,
            WeightFormat::Q8_0 => 34,
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
        }
    }

    pub fn row_bytes(self, cols: usize) -> usize {
        cols / BLOCK * self.block_bytes()
    }

    /// Every format, in the order `name` lists them.
    pub const ALL: [WeightFormat; 6] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
    ];

    /// By its lower-case name (`q4_0`, `bf16` …).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Q8_0 => "q8_0",
            WeightFormat::Q4_0 => "q4_0",
            WeightFormat::Q4_1 => "q4_1",
        }
    }
}

#[inline]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// Dequantizes whole blocks: `out.len()` must be a multiple of 32 and
/// `bytes` hold exactly those blocks. The arithmetic (a multiply, then an
/// add, in f32) is the one ggml's reference and the `gguf` Python package
/// use, so dequantized weights agree bit for bit.
pub fn dequantize_scalar(format: WeightFormat, bytes: &[u8], out: &mut [f32]) {
    let bb = format.block_bytes();
    for (block, dst) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(BLOCK)) {
        match format {
            WeightFormat::F32 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            WeightFormat::F16 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(2)) {
                    *o = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            WeightFormat::Bf16 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(2)) {
                    *o = bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            WeightFormat::Q8_0 => {
                let d = f16_at(block, 0);
                for (o, &q) in dst.iter_mut().zip(&block[2..34]) {
                    *o = (q as i8) as f32 * d;
                }
            }
            WeightFormat::Q4_0 => {
                let d = f16_at(block, 0);
                for j in 0..16 {
                    let q = block[2 + j];
                    dst[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
                    dst[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
            WeightFormat::Q4_1 => {
                let d = f16_at(block, 0);
                let m = f16_at(block, 2);
                for j in 0..16 {
                    let q = block[4 + j];
                    dst[j] = (q & 0x0F) as f32 * d + m;
                    dst[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
        }
    }
}

/// The inverse for tests and the quantizer: round-to-nearest Q8_0, as ggml's
/// reference quantizer does.
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 34);
    for block in values.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        out.extend(block.iter().map(|&v| ((v * id).round() as i8) as u8));
    }
    out
}

/// Q4_1 quantization as ggml's reference (min/max per block).
pub fn quantize_q4_1(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 20);
    for block in values.chunks_exact(BLOCK) {
        let min = block.iter().fold(f32::INFINITY, |a, &v| a.min(v));
        let max = block.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_bits().to_le_bytes());
        for j in 0..16 {
            let q0 = (((block[j] - min) * id + 0.5) as u8).min(15);
            let q1 = (((block[j + 16] - min) * id + 0.5) as u8).min(15);
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Q4_0 quantization as ggml's reference (signed max per block).
pub fn quantize_q4_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 18);
    for block in values.chunks_exact(BLOCK) {
        let max = block
            .iter()
            .fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        for j in 0..16 {
            let q0 = ((block[j] * id + 8.5) as u8).min(15);
            let q1 = ((block[j + 16] * id + 8.5) as u8).min(15);
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Stores whole blocks of values in `format`, as a file would hold them.
pub fn encode(format: WeightFormat, values: &[f32]) -> Vec<u8> {
    match format {
        WeightFormat::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        WeightFormat::F16 | WeightFormat::Bf16 => encode_half(format, values),
        WeightFormat::Q8_0 => quantize_q8_0(values),
        WeightFormat::Q4_0 => quantize_q4_0(values),
        WeightFormat::Q4_1 => quantize_q4_1(values),
    }
}

/// Stores values as f16 or bf16 (little-endian), for tests and the quantizer.
pub fn encode_half(format: WeightFormat, values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| match format {
            WeightFormat::Bf16 => bf16::from_f32(v).to_bits().to_le_bytes(),
            _ => f16::from_f32(v).to_bits().to_le_bytes(),
        })
        .collect()
}
