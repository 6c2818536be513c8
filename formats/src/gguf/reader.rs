//! Reading GGUF files (v2 and v3, little-endian): header, metadata and tensor infos, validated
//! as llama.cpp's `gguf_init_from_file_impl` validates them, and tensor data memory-mapped or
//! read on demand.

use super::error::GgufError;
use super::value::{GgufArray, GgufValue, GgufValueType};
use super::{pad, GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::ggml::GgmlType;
use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// llama.cpp's caps on one string and one array (`GGUF_MAX_STRING_LENGTH`, `GGUF_MAX_ARRAY_ELEMENTS`).
const MAX_STRING_LENGTH: u64 = 1 << 30;
const MAX_ARRAY_ELEMENTS: u64 = 1 << 30;

/// One tensor's record in the GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Tensor name (shorter than 64 bytes).
    pub name: String,
    /// Element type.
    pub ty: GgmlType,
    /// Dimensions as stored, innermost first (`ne[0]` is the row length).
    pub dims: Vec<u64>,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// `ne[0..4]`, with missing dimensions set to 1.
    pub fn ne(&self) -> [u64; GGML_MAX_DIMS] {
        let mut ne = [1u64; GGML_MAX_DIMS];
        ne[..self.dims.len()].copy_from_slice(&self.dims);
        ne
    }

    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Size of the data in bytes.
    pub fn n_bytes(&self) -> u64 {
        self.ty.row_size(self.n_elements()).unwrap_or(0)
    }

    /// `ggml_n_dims`: the number of dimensions once trailing ones are dropped (at least 1).
    pub fn n_dims(&self) -> usize {
        let ne = self.ne();
        (1..GGML_MAX_DIMS)
            .rev()
            .find(|&i| ne[i] > 1)
            .map_or(1, |i| i + 1)
    }
}

/// Parsed GGUF header: version, ordered metadata and tensor infos.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub kvs: Vec<(String, GgufValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment (`general.alignment`, default 32).
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

impl GgufHeader {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.kvs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The tensor info named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `general.architecture`, if present and a string.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(|v| v.as_str())
    }
}

pub use crate::read_mode::ReadMode;

enum Data {
    Mmap(memmap2::Mmap),
    File(File),
}

/// An open GGUF file.
pub struct GgufFile {
    path: PathBuf,
    header: GgufHeader,
    len: u64,
    data: Data,
}

impl GgufFile {
    /// Opens and validates `path`, memory-mapping its data.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        Self::open_with(path, ReadMode::Mmap)
    }

    /// Opens and validates `path` with the given data access mode.
    pub fn open_with(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| GgufError::io(&path, e))?;
        let len = file.metadata().map_err(|e| GgufError::io(&path, e))?.len();
        let header = {
            let mut r = HeaderReader {
                inner: BufReader::new(&file),
                pos: 0,
                len,
                path: &path,
            };
            read_header(&mut r)?
        };
        let data = match mode {
            // SAFETY: the map is read-only; a file truncated by another process while mapped
            // can raise SIGBUS, as with every mmap-based model loader.
            ReadMode::Mmap => match unsafe { memmap2::Mmap::map(&file) } {
                Ok(m) => Data::Mmap(m),
                Err(_) => Data::File(file),
            },
            ReadMode::Buffered => Data::File(file),
        };
        Ok(GgufFile {
            path,
            header,
            len,
            data,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    pub fn header(&self) -> &GgufHeader {
        &self.header
    }

    /// File length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never true for a valid file).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw bytes of tensor `t`, borrowed from the map or read from the file.
    pub fn tensor_data(&self, t: &TensorInfo) -> Result<Cow<'_, [u8]>, GgufError> {
        let n = t.ty.row_size(t.n_elements());
        let range = self
            .header
            .data_offset
            .checked_add(t.offset)
            .and_then(|s| Some((s, s.checked_add(n?)?)));
        let (start, end) = match range {
            Some((s, e)) if e <= self.len => (s, e),
            _ => {
                return Err(GgufError::Usage {
                    path: self.path.clone(),
                    reason: format!(
                        "tensor '{}' (offset {}) lies outside this file's data",
                        t.name, t.offset
                    ),
                })
            }
        };
        match &self.data {
            Data::Mmap(m) => Ok(Cow::Borrowed(&m[start as usize..end as usize])),
            Data::File(f) => {
                let mut f = f;
                let mut buf = vec![0u8; (end - start) as usize];
                f.seek(SeekFrom::Start(start))
                    .map_err(|e| GgufError::io(&self.path, e))?;
                f.read_exact(&mut buf)
                    .map_err(|e| GgufError::io(&self.path, e))?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

impl GgufFile {
    /// Tells the kernel that tensor `t`'s pages will not be needed again, so that streaming a
    /// model through memory does not keep it all resident (as llama.cpp unmaps each weight after
    /// use). A later read of the tensor still works: the pages are read again from the file.
    pub fn release(&self, t: &TensorInfo) {
        #[cfg(unix)]
        if let Data::Mmap(m) = &self.data {
            let start = self.header.data_offset.saturating_add(t.offset);
            let len = t.n_bytes();
            if start
                .checked_add(len)
                .is_some_and(|end| end <= m.len() as u64)
            {
                // SAFETY: the map is a read-only shared file mapping that qforge never writes, so
                // dropping its pages only discards cached copies of the file's bytes; any later
                // access faults the same bytes back in from the file.
                let _ = unsafe {
                    m.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start as usize,
                        len as usize,
                    )
                };
            }
        }
    }
}

/// Reads a header from any reader; `len` is the total length of the file (used to bound every
/// allocation and to check that the data section is present).
pub fn parse_header(reader: impl Read, len: u64, path: &Path) -> Result<GgufHeader, GgufError> {
    let mut r = HeaderReader {
        inner: reader,
        pos: 0,
        len,
        path,
    };
    read_header(&mut r)
}

struct HeaderReader<'p, R> {
    inner: R,
    pos: u64,
    len: u64,
    path: &'p Path,
}

impl<R: Read> HeaderReader<'_, R> {
    fn invalid(&self, at: u64, reason: impl Into<String>) -> GgufError {
        GgufError::Invalid {
            path: self.path.to_path_buf(),
            offset: at,
            reason: reason.into(),
        }
    }

    fn need(&self, n: u64, what: &str) -> Result<(), GgufError> {
        if self.pos.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(GgufError::Truncated {
                path: self.path.to_path_buf(),
                what: what.to_string(),
                offset: self.pos,
                needed: n,
                len: self.len,
            });
        }
        Ok(())
    }

    fn bytes(&mut self, n: u64, what: &str) -> Result<Vec<u8>, GgufError> {
        self.need(n, what)?;
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| GgufError::io(self.path, e))?;
        self.pos += n;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        self.need(N as u64, what)?;
        let mut buf = [0u8; N];
        self.inner
            .read_exact(&mut buf)
            .map_err(|e| GgufError::io(self.path, e))?;
        self.pos += N as u64;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        if n > MAX_STRING_LENGTH {
            return Err(self.invalid(
                at,
                format!("{what}: string length {n} exceeds the maximum {MAX_STRING_LENGTH}"),
            ));
        }
        self.bytes(n, what)
    }

    fn fixed_vec<T, const N: usize>(
        &mut self,
        n: u64,
        what: &str,
        f: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, GgufError> {
        self.need(n * N as u64, what)?;
        let raw = self.bytes(n * N as u64, what)?;
        Ok(raw
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N bytes")))
            .collect())
    }

    fn value(&mut self, ty: GgufValueType, what: &str) -> Result<GgufValue, GgufError> {
        use GgufValue as V;
        Ok(match ty {
            GgufValueType::U8 => V::U8(self.array::<1>(what)?[0]),
            GgufValueType::I8 => V::I8(self.array::<1>(what)?[0] as i8),
            GgufValueType::U16 => V::U16(u16::from_le_bytes(self.array(what)?)),
            GgufValueType::I16 => V::I16(i16::from_le_bytes(self.array(what)?)),
            GgufValueType::U32 => V::U32(self.u32(what)?),
            GgufValueType::I32 => V::I32(i32::from_le_bytes(self.array(what)?)),
            GgufValueType::F32 => V::F32(f32::from_le_bytes(self.array(what)?)),
            GgufValueType::Bool => V::Bool(self.array::<1>(what)?[0] != 0),
            GgufValueType::String => V::String(self.string(what)?),
            GgufValueType::U64 => V::U64(self.u64(what)?),
            GgufValueType::I64 => V::I64(i64::from_le_bytes(self.array(what)?)),
            GgufValueType::F64 => V::F64(f64::from_le_bytes(self.array(what)?)),
            GgufValueType::Array => V::Array(self.array_value(what)?),
        })
    }

    fn array_value(&mut self, what: &str) -> Result<GgufArray, GgufError> {
        use GgufArray as A;
        let at = self.pos;
        let tid = self.u32(what)?;
        let ty = GgufValueType::from_id(tid)
            .ok_or_else(|| self.invalid(at, format!("{what}: invalid array element type {tid}")))?;
        let at = self.pos;
        let n = self.u64(what)?;
        if n > MAX_ARRAY_ELEMENTS {
            return Err(self.invalid(
                at,
                format!("{what}: array of {n} elements exceeds the maximum {MAX_ARRAY_ELEMENTS}"),
            ));
        }
        Ok(match ty {
            GgufValueType::U8 => A::U8(self.bytes(n, what)?),
            GgufValueType::I8 => A::I8(self.fixed_vec(n, what, |b: [u8; 1]| b[0] as i8)?),
            GgufValueType::Bool => A::Bool(self.fixed_vec(n, what, |b: [u8; 1]| b[0] != 0)?),
            GgufValueType::U16 => A::U16(self.fixed_vec(n, what, u16::from_le_bytes)?),
            GgufValueType::I16 => A::I16(self.fixed_vec(n, what, i16::from_le_bytes)?),
            GgufValueType::U32 => A::U32(self.fixed_vec(n, what, u32::from_le_bytes)?),
            GgufValueType::I32 => A::I32(self.fixed_vec(n, what, i32::from_le_bytes)?),
            GgufValueType::F32 => A::F32(self.fixed_vec(n, what, f32::from_le_bytes)?),
            GgufValueType::U64 => A::U64(self.fixed_vec(n, what, u64::from_le_bytes)?),
            GgufValueType::I64 => A::I64(self.fixed_vec(n, what, i64::from_le_bytes)?),
            GgufValueType::F64 => A::F64(self.fixed_vec(n, what, f64::from_le_bytes)?),
            GgufValueType::String => {
                // Every string needs at least its 8-byte length: bound the count by the file.
                self.need(n.saturating_mul(8), what)?;
                let mut v = Vec::with_capacity((n as usize).min(4096));
                for _ in 0..n {
                    v.push(self.string(what)?);
                }
                A::String(v)
            }
            GgufValueType::Array => {
                return Err(self.invalid(at, format!("{what}: nested arrays are not supported")))
            }
        })
    }
}

fn read_header<R: Read>(r: &mut HeaderReader<'_, R>) -> Result<GgufHeader, GgufError> {
    let magic = r.array::<4>("magic")?;
    if magic != GGUF_MAGIC {
        return Err(r.invalid(
            0,
            format!(
                "bad magic {:?}, expected \"GGUF\"",
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let version = r.u32("version")?;
    if version & 0x0000_FFFF == 0 && version != 0 {
        return Err(r.invalid(
            4,
            format!(
                "version {version:#x} looks byte-swapped: big-endian GGUF files are not supported"
            ),
        ));
    }
    match version {
        0 => return Err(r.invalid(4, "bad GGUF version 0")),
        1 => return Err(r.invalid(4, "GGUF version 1 is no longer supported")),
        2 | 3 => {}
        v => {
            return Err(r.invalid(
                4,
                format!("GGUF version {v} is newer than the supported version 3"),
            ))
        }
    }
    let n_tensors = r.u64("tensor count")? as i64;
    let n_kv = r.u64("metadata count")? as i64;
    // Each KV needs at least 12 bytes and each tensor info at least 24: bound by the file size.
    if n_tensors < 0 || (n_tensors as u64).saturating_mul(24) > r.len {
        return Err(r.invalid(
            8,
            format!(
                "tensor count {n_tensors} is impossible for a file of {} bytes",
                r.len
            ),
        ));
    }
    if n_kv < 0 || (n_kv as u64).saturating_mul(12) > r.len {
        return Err(r.invalid(
            16,
            format!(
                "metadata count {n_kv} is impossible for a file of {} bytes",
                r.len
            ),
        ));
    }

    let mut kvs: Vec<(String, GgufValue)> = Vec::with_capacity((n_kv as usize).min(4096));
    let mut seen = std::collections::HashSet::new();
    for i in 0..n_kv {
        let at = r.pos;
        let key = r.string(&format!("key of metadata entry {i}"))?;
        let key = String::from_utf8(key)
            .map_err(|_| r.invalid(at, format!("key of metadata entry {i} is not UTF-8")))?;
        if key.is_empty() {
            return Err(r.invalid(at, format!("key of metadata entry {i} is empty")));
        }
        if !seen.insert(key.clone()) {
            return Err(r.invalid(at, format!("duplicate key '{key}'")));
        }
        let at = r.pos;
        let tid = r.u32(&format!("type of '{key}'"))?;
        let ty = GgufValueType::from_id(tid)
            .ok_or_else(|| r.invalid(at, format!("key '{key}' has invalid GGUF type {tid}")))?;
        let v = r.value(ty, &format!("value of '{key}'"))?;
        kvs.push((key, v));
    }

    let mut alignment = GGUF_DEFAULT_ALIGNMENT;
    if let Some((_, v)) = kvs.iter().find(|(k, _)| k == "general.alignment") {
        match v {
            GgufValue::U32(a) if *a != 0 && a.is_power_of_two() => alignment = *a as u64,
            GgufValue::U32(a) => {
                return Err(r.invalid(0, format!("general.alignment {a} is not a power of 2")))
            }
            other => {
                return Err(r.invalid(
                    0,
                    format!(
                        "general.alignment must be of type u32 but is {}",
                        other.value_type().name()
                    ),
                ))
            }
        }
    }

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity((n_tensors as usize).min(4096));
    let mut names = std::collections::HashSet::new();
    for i in 0..n_tensors {
        let at = r.pos;
        let name = r.string(&format!("name of tensor {i}"))?;
        if name.len() >= GGML_MAX_NAME {
            return Err(r.invalid(
                at,
                format!(
                    "tensor {i} name is too long: {} >= {GGML_MAX_NAME} bytes",
                    name.len()
                ),
            ));
        }
        let name = String::from_utf8(name)
            .map_err(|_| r.invalid(at, format!("tensor {i} name is not UTF-8")))?;
        if !names.insert(name.clone()) {
            return Err(r.invalid(at, format!("duplicate tensor name '{name}'")));
        }
        let at = r.pos;
        let n_dims = r.u32(&format!("dimension count of '{name}'"))?;
        if n_dims as usize > GGML_MAX_DIMS {
            return Err(r.invalid(
                at,
                format!("tensor '{name}' has {n_dims} dimensions, more than {GGML_MAX_DIMS}"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            let at = r.pos;
            let ne = r.u64(&format!("dimension {d} of '{name}'"))? as i64;
            if ne < 0 {
                return Err(r.invalid(
                    at,
                    format!("tensor '{name}' dimension {d} is negative ({ne})"),
                ));
            }
            dims.push(ne as u64);
        }
        let mut n: u64 = 1;
        for &d in &dims {
            n = n
                .checked_mul(d)
                .filter(|&n| n <= i64::MAX as u64)
                .ok_or_else(|| {
                    r.invalid(at, format!("tensor '{name}' shape {dims:?} overflows"))
                })?;
        }
        let at = r.pos;
        let tid = r.u32(&format!("type of '{name}'"))?;
        let ty = GgmlType::from_id(tid).ok_or_else(|| {
            r.invalid(
                at,
                format!("tensor '{name}' has invalid or removed ggml type {tid}"),
            )
        })?;
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % ty.block_size() as u64 != 0 {
            return Err(r.invalid(
                at,
                format!("tensor '{name}' of type {ty} has {ne0} elements per row, not a multiple of the block size {}", ty.block_size()),
            ));
        }
        if ty.row_size(n).is_none()
            || (n / ty.block_size() as u64)
                .checked_mul(ty.type_size() as u64)
                .is_none()
        {
            return Err(r.invalid(at, format!("tensor '{name}' size in bytes overflows")));
        }
        let offset = r.u64(&format!("offset of '{name}'"))?;
        tensors.push(TensorInfo {
            name,
            ty,
            dims,
            offset,
        });
    }

    let data_offset = if n_tensors > 0 {
        pad(r.pos, alignment)
    } else {
        r.pos
    };
    let mut expected: u64 = 0;
    for t in &tensors {
        if t.offset != expected {
            return Err(r.invalid(
                data_offset,
                format!(
                    "tensor '{}' has offset {}, expected {expected}",
                    t.name, t.offset
                ),
            ));
        }
        let nb = t.n_bytes();
        expected = nb
            .checked_add(alignment - 1)
            .map(|x| x / alignment * alignment)
            .and_then(|p| expected.checked_add(p))
            .ok_or_else(|| r.invalid(data_offset, format!("tensor '{}' size overflows", t.name)))?;
    }
    // The last tensor's padding is written by every writer but not required by the reader.
    if let Some(last) = tensors.last() {
        let end = data_offset
            .checked_add(last.offset)
            .and_then(|o| o.checked_add(last.n_bytes()))
            .ok_or_else(|| r.invalid(data_offset, "data section size overflows"))?;
        if end > r.len {
            return Err(GgufError::Truncated {
                path: r.path.to_path_buf(),
                what: format!("tensor data (last tensor '{}')", last.name),
                offset: data_offset,
                needed: end - data_offset,
                len: r.len,
            });
        }
    }
    Ok(GgufHeader {
        version,
        kvs,
        tensors,
        alignment,
        data_offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{encode_header, TensorSpec};

    fn sample() -> Vec<u8> {
        let kvs = vec![
            (
                "general.architecture".to_string(),
                GgufValue::string("llama"),
            ),
            (
                "a.list".to_string(),
                GgufValue::Array(GgufArray::String(vec![b"x".to_vec(), b"".to_vec()])),
            ),
        ];
        let specs = vec![TensorSpec {
            name: "t".into(),
            ty: GgmlType::F32,
            dims: vec![3, 2],
        }];
        let (mut bytes, _) = encode_header(&kvs, &specs, 32).unwrap();
        bytes.extend_from_slice(&[0u8; 32]);
        bytes
    }

    #[test]
    fn version_2_files_read_like_version_3() {
        // v2 and v3 share the little-endian layout; v3 only added big-endian files.
        let v3 = sample();
        let mut v2 = v3.clone();
        v2[4..8].copy_from_slice(&2u32.to_le_bytes());
        let p = Path::new("mem.gguf");
        let h3 = parse_header(&v3[..], v3.len() as u64, p).unwrap();
        let h2 = parse_header(&v2[..], v2.len() as u64, p).unwrap();
        assert_eq!(h2.version, 2);
        assert_eq!(
            (h2.kvs, h2.tensors, h2.data_offset),
            (h3.kvs, h3.tensors, h3.data_offset)
        );
    }

    #[test]
    fn every_truncation_of_a_valid_header_is_an_error() {
        let full = sample();
        for n in 0..full.len() - 24 {
            assert!(
                parse_header(&full[..n], n as u64, Path::new("t.gguf")).is_err(),
                "length {n}"
            );
        }
    }
}
