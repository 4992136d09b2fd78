//! Opening a GGUF file (versions 2 and 3): header, metadata, tensor
//! directory. The tensor data stays in the memory map; nothing is copied.

use super::cursor::{Cursor, CursorResult};
use super::ggml_type::GgmlType;
use super::value::{MetaArray, MetaValue};
use crate::backend::SharedBytes;
use crate::model::error::{ModelError, Result};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// One entry of the tensor directory.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the innermost (row) length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Byte offset inside the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

pub struct GgufFile {
    path: PathBuf,
    pub version: u32,
    metadata: Vec<(String, MetaValue)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    mmap: Arc<Mmap>,
    data_start: usize,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only; a file changed underneath a running
        // server is outside what we can defend against, as for every
        // mmap-based loader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::parse(path, Arc::new(mmap))
    }

    /// A GGUF image held in memory (a file about to be written), named
    /// `label` in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: &[u8]) -> Result<Self> {
        let path = label.into();
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(io)?;
        map[..bytes.len()].copy_from_slice(bytes);
        let map = map.make_read_only().map_err(io)?;
        Self::parse(path.clone(), Arc::new(map))
    }

    fn parse(path: PathBuf, mmap: Arc<Mmap>) -> Result<Self> {
        if mmap.len() < 4 || &mmap[..4] != MAGIC {
            let found = &mmap[..mmap.len().min(4)];
            return Err(ModelError::NotGguf {
                path,
                detail: format!("magic bytes are {found:02x?}, expected \"GGUF\""),
            });
        }
        let parsed = parse_directory(&mmap);
        let dir = match parsed {
            Ok(d) => d,
            Err(Problem::Version(v)) => {
                return Err(ModelError::NotGguf {
                    path,
                    detail: format!("GGUF version {v} is not supported (2 and 3 are)"),
                })
            }
            Err(Problem::Malformed(detail)) => return Err(ModelError::Malformed { path, detail }),
        };
        let index = dir
            .metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let tensor_index = dir
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            path,
            version: dir.version,
            metadata: dir.metadata,
            index,
            tensors: dir.tensors,
            tensor_index,
            mmap,
            data_start: dir.data_start,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn metadata(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor, borrowed from the map.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        let start = self.data_start + info.offset as usize;
        &self.mmap[start..start + info.n_bytes as usize]
    }

    /// The tensor's bytes as shared weight storage: no copy, the map stays
    /// alive as long as any weight uses it.
    pub fn tensor_data(&self, info: &TensorInfo) -> SharedBytes {
        let start = self.data_start + info.offset as usize;
        SharedBytes::window(self.mmap.clone(), start, info.n_bytes as usize)
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.mmap.len() as u64
    }

    // Typed metadata accessors: a missing key and a key of the wrong type
    // are different errors, both naming the file and the key.

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.get(key).ok_or_else(|| ModelError::MissingKey {
            path: self.path.clone(),
            key: key.to_owned(),
        })
    }

    fn wrong(&self, key: &str, expected: &'static str) -> ModelError {
        ModelError::WrongKeyType {
            path: self.path.clone(),
            key: key.to_owned(),
            expected,
        }
    }

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.wrong(key, "an unsigned integer"))
    }

    pub fn get_u64_or(&self, key: &str, default: u64) -> Result<u64> {
        match self.get(key) {
            None => Ok(default),
            Some(_) => self.get_u64(key),
        }
    }

    pub fn get_f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.wrong(key, "a number")),
        }
    }

    pub fn get_bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.wrong(key, "a boolean")),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong(key, "a string"))
    }

    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.get_str(key).map(Some),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<&MetaArray> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong(key, "an array"))
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            MetaArray::Str(v) => Ok(v),
            _ => Err(self.wrong(key, "an array of strings")),
        }
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get_array(key)? {
            MetaArray::F32(v) => Ok(v),
            _ => Err(self.wrong(key, "an array of f32")),
        }
    }

    pub fn get_int_array(&self, key: &str) -> Result<Vec<i64>> {
        self.get_array(key)?
            .to_i64s()
            .ok_or_else(|| self.wrong(key, "an array of integers"))
    }
}

struct Directory {
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
    data_start: usize,
}

enum Problem {
    Version(u32),
    Malformed(String),
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Malformed(s)
    }
}

fn parse_directory(bytes: &[u8]) -> Result<Directory, Problem> {
    let mut c = Cursor::new(bytes);
    c.take(4, "magic")?;
    let version = c.u32("version")?;
    if version != 2 && version != 3 {
        return Err(Problem::Version(version));
    }
    // A tensor directory entry takes at least 8+4+8+4+8 bytes; a metadata
    // entry at least 8+4+1.
    let n_tensors = c.count(32, "tensor count")?;
    let n_kv = c.count(13, "metadata count")?;

    let mut metadata = Vec::with_capacity(n_kv);
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key #{i}"))?;
        let ty = c.u32(&format!("type of `{key}`"))?;
        let value = read_value(&mut c, ty, &key)?;
        metadata.push((key, value));
    }
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .unwrap_or(DEFAULT_ALIGNMENT);
    if alignment == 0 || !alignment.is_power_of_two() {
        return Err(Problem::Malformed(format!(
            "general.alignment is {alignment}, not a power of two"
        )));
    }

    let mut tensors = Vec::with_capacity(n_tensors);
    for i in 0..n_tensors {
        tensors.push(read_tensor_info(&mut c, i)?);
    }
    let data_start = (c.pos() as u64).div_ceil(alignment) * alignment;
    let data_len = (bytes.len() as u64).saturating_sub(data_start);
    for t in &tensors {
        if t.offset % alignment != 0 {
            return Err(Problem::Malformed(format!(
                "tensor `{}` starts at data offset {}, not a multiple of the alignment {alignment}",
                t.name, t.offset
            )));
        }
        let end = t.offset.checked_add(t.n_bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(Problem::Malformed(format!(
                "truncated: tensor `{}` needs bytes {}..{} of the data section, which holds {data_len}",
                t.name,
                t.offset,
                t.offset.saturating_add(t.n_bytes)
            )));
        }
    }
    Ok(Directory {
        version,
        metadata,
        tensors,
        data_start: data_start as usize,
    })
}

fn read_tensor_info(c: &mut Cursor, i: usize) -> CursorResult<TensorInfo> {
    let name = c.string(&format!("name of tensor #{i}"))?;
    let n_dims = c.u32(&format!("dimension count of `{name}`"))?;
    if n_dims == 0 || n_dims > 4 {
        return Err(format!(
            "tensor `{name}` has {n_dims} dimensions (1 to 4 allowed)"
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(c.u64(&format!("dimensions of `{name}`"))?);
    }
    let ty_id = c.u32(&format!("type of `{name}`"))?;
    let ty = GgmlType::from_id(ty_id)
        .ok_or_else(|| format!("tensor `{name}` has unknown type id {ty_id}"))?;
    let offset = c.u64(&format!("offset of `{name}`"))?;
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("tensor `{name}` dimensions {dims:?} overflow"))?;
    let n_bytes = ty.bytes_for(n_elements).ok_or_else(|| {
        format!(
            "tensor `{name}` of type {ty} has {n_elements} elements, not a whole number of {}-element blocks",
            ty.block_layout().0
        )
    })?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        n_bytes,
    })
}

fn read_value(c: &mut Cursor, ty: u32, key: &str) -> CursorResult<MetaValue> {
    Ok(match ty {
        0 => MetaValue::U8(c.u8(key)?),
        1 => MetaValue::I8(c.u8(key)? as i8),
        2 => MetaValue::U16(c.u16(key)?),
        3 => MetaValue::I16(c.u16(key)? as i16),
        4 => MetaValue::U32(c.u32(key)?),
        5 => MetaValue::I32(c.u32(key)? as i32),
        6 => MetaValue::F32(c.f32(key)?),
        7 => MetaValue::Bool(c.u8(key)? != 0),
        8 => MetaValue::Str(c.string(key)?),
        9 => MetaValue::Array(read_array(c, key, 0)?),
        10 => MetaValue::U64(c.u64(key)?),
        11 => MetaValue::I64(c.u64(key)? as i64),
        12 => MetaValue::F64(c.f64(key)?),
        other => return Err(format!("metadata `{key}` has unknown value type {other}")),
    })
}

fn read_array(c: &mut Cursor, key: &str, depth: usize) -> CursorResult<MetaArray> {
    if depth > 4 {
        return Err(format!("metadata `{key}` nests arrays too deeply"));
    }
    let elem = c.u32(key)?;
    let what = format!("array `{key}`");
    macro_rules! prim {
        ($variant:ident, $size:expr, $read:expr) => {{
            let n = c.count($size, &what)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push($read(&mut *c)?);
            }
            MetaArray::$variant(v)
        }};
    }
    Ok(match elem {
        0 => prim!(U8, 1, |c: &mut Cursor| c.u8(key)),
        1 => prim!(I8, 1, |c: &mut Cursor| c.u8(key).map(|v| v as i8)),
        2 => prim!(U16, 2, |c: &mut Cursor| c.u16(key)),
        3 => prim!(I16, 2, |c: &mut Cursor| c.u16(key).map(|v| v as i16)),
        4 => prim!(U32, 4, |c: &mut Cursor| c.u32(key)),
        5 => prim!(I32, 4, |c: &mut Cursor| c.u32(key).map(|v| v as i32)),
        6 => prim!(F32, 4, |c: &mut Cursor| c.f32(key)),
        7 => prim!(Bool, 1, |c: &mut Cursor| c.u8(key).map(|v| v != 0)),
        8 => prim!(Str, 8, |c: &mut Cursor| c.string(&what)),
        9 => prim!(Array, 12, |c: &mut Cursor| read_array(c, key, depth + 1)),
        10 => prim!(U64, 8, |c: &mut Cursor| c.u64(key)),
        11 => prim!(I64, 8, |c: &mut Cursor| c.u64(key).map(|v| v as i64)),
        12 => prim!(F64, 8, |c: &mut Cursor| c.f64(key)),
        other => return Err(format!("array `{key}` has unknown element type {other}")),
    })
}
