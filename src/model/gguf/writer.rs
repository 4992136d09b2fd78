//! Writing GGUF v3 files: used by tests to build small or broken files, and
//! by the quantizer to emit models llama.cpp also reads.

use super::ggml_type::GgmlType;
use super::value::{MetaArray, MetaValue};
use std::io::{self, Write};

const ALIGNMENT: u64 = 32;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        self.metadata.push((key.to_owned(), value));
        self
    }

    /// `dims` in ggml order (row length first). `data` must hold exactly the
    /// bytes the type and shape imply.
    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        self.tensors.push(PendingTensor {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ty,
            data,
        });
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out).expect("writing to a Vec cannot fail");
        out
    }

    pub fn write<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut head, k);
            put_value(&mut head, v);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut head, &t.name);
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&type_id(t.ty).to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + t.data.len() as u64).div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        pad(&mut head);
        w.write_all(&head)?;
        for t in &self.tensors {
            w.write_all(&t.data)?;
            let rem = t.data.len() as u64 % ALIGNMENT;
            if rem != 0 {
                w.write_all(&vec![0u8; (ALIGNMENT - rem) as usize])?;
            }
        }
        Ok(())
    }
}

fn pad(buf: &mut Vec<u8>) {
    let rem = buf.len() as u64 % ALIGNMENT;
    if rem != 0 {
        buf.resize(buf.len() + (ALIGNMENT - rem) as usize, 0);
    }
}

fn type_id(ty: GgmlType) -> u32 {
    (0..64)
        .find(|&id| GgmlType::from_id(id) == Some(ty))
        .expect("every GgmlType has an id")
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn value_type(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::Str(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn array_type(a: &MetaArray) -> u32 {
    match a {
        MetaArray::U8(_) => 0,
        MetaArray::I8(_) => 1,
        MetaArray::U16(_) => 2,
        MetaArray::I16(_) => 3,
        MetaArray::U32(_) => 4,
        MetaArray::I32(_) => 5,
        MetaArray::F32(_) => 6,
        MetaArray::Bool(_) => 7,
        MetaArray::Str(_) => 8,
        MetaArray::Array(_) => 9,
        MetaArray::U64(_) => 10,
        MetaArray::I64(_) => 11,
        MetaArray::F64(_) => 12,
    }
}

fn put_value(buf: &mut Vec<u8>, v: &MetaValue) {
    buf.extend_from_slice(&value_type(v).to_le_bytes());
    put_payload(buf, v);
}

fn put_payload(buf: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => buf.push(*x),
        MetaValue::I8(x) => buf.push(*x as u8),
        MetaValue::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => buf.push(*x as u8),
        MetaValue::Str(s) => put_str(buf, s),
        MetaValue::Array(a) => put_array(buf, a),
    }
}

fn put_array(buf: &mut Vec<u8>, a: &MetaArray) {
    buf.extend_from_slice(&array_type(a).to_le_bytes());
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr, $f:expr) => {
            for x in $v {
                $f(buf, x)
            }
        };
    }
    match a {
        MetaArray::U8(v) => buf.extend_from_slice(v),
        MetaArray::I8(v) => each!(v, |b: &mut Vec<u8>, x: &i8| b.push(*x as u8)),
        MetaArray::U16(v) => each!(v, |b: &mut Vec<u8>, x: &u16| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::I16(v) => each!(v, |b: &mut Vec<u8>, x: &i16| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::U32(v) => each!(v, |b: &mut Vec<u8>, x: &u32| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::I32(v) => each!(v, |b: &mut Vec<u8>, x: &i32| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::U64(v) => each!(v, |b: &mut Vec<u8>, x: &u64| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::I64(v) => each!(v, |b: &mut Vec<u8>, x: &i64| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::F32(v) => each!(v, |b: &mut Vec<u8>, x: &f32| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::F64(v) => each!(v, |b: &mut Vec<u8>, x: &f64| b
            .extend_from_slice(&x.to_le_bytes())),
        MetaArray::Bool(v) => each!(v, |b: &mut Vec<u8>, x: &bool| b.push(*x as u8)),
        MetaArray::Str(v) => each!(v, |b: &mut Vec<u8>, x: &String| put_str(b, x)),
        MetaArray::Array(v) => each!(v, put_array),
    }
}
