//! Streaming writer of one safetensors file.

use super::error::{ErrorKind, SafetensorsError};
use super::header::TensorInfo;
use super::layout::{encode_header, layout, TensorSpec};
use super::temp_file::TempFile;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

/// Produces tensor data on demand, one tensor at a time, so a whole model never has to be in
/// memory.
pub trait TensorSource {
    /// Writes the little-endian bytes of `tensor`, exactly
    /// [`tensor.byte_len()`](TensorInfo::byte_len) of them, to `out`.
    fn write_tensor(&mut self, tensor: &TensorInfo, out: &mut dyn Write) -> io::Result<()>;
}

impl<F> TensorSource for F
where
    F: FnMut(&TensorInfo, &mut dyn Write) -> io::Result<()>,
{
    fn write_tensor(&mut self, tensor: &TensorInfo, out: &mut dyn Write) -> io::Result<()> {
        self(tensor, out)
    }
}

/// Passes at most `limit` bytes through and counts what was offered.
struct Bounded<'a> {
    inner: &'a mut dyn Write,
    limit: u64,
    offered: u64,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.offered = self.offered.saturating_add(buf.len() as u64);
        if self.offered > self.limit {
            return Err(io::Error::other(
                "the source wrote more bytes than the tensor holds",
            ));
        }
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the header and then each tensor of `infos` (in file order) from `source` to `out`.
/// Errors carry no path; the caller adds it.
pub(crate) fn write_body(
    out: &mut dyn Write,
    infos: &[TensorInfo],
    metadata: Option<&BTreeMap<String, String>>,
    source: &mut dyn TensorSource,
) -> Result<(), ErrorKind> {
    let header = encode_header(infos, metadata)?;
    out.write_all(&header).map_err(ErrorKind::Io)?;
    for info in infos {
        let expected = info.byte_len();
        let mut bounded = Bounded {
            inner: &mut *out,
            limit: expected,
            offered: 0,
        };
        let result = source.write_tensor(info, &mut bounded);
        let offered = bounded.offered;
        let tensor = || info.name().to_owned();
        match result {
            _ if offered > expected => {
                return Err(ErrorKind::SourceLength {
                    tensor: tensor(),
                    expected,
                    written: offered,
                })
            }
            Err(source) => {
                return Err(ErrorKind::Source {
                    tensor: tensor(),
                    source,
                })
            }
            Ok(()) if offered != expected => {
                return Err(ErrorKind::SourceLength {
                    tensor: tensor(),
                    expected,
                    written: offered,
                })
            }
            Ok(()) => {}
        }
    }
    Ok(())
}

/// Writes `specs` to `path` as one safetensors file laid out as the reference writer does
/// (see [`layout`]), pulling each tensor's bytes from `source` in file order, with an optional
/// `__metadata__` map. The file is written under a temporary name in the same directory and
/// renamed to `path` only on success. Returns the header entries written, in file order.
pub fn write_file(
    path: impl AsRef<Path>,
    specs: &[TensorSpec],
    metadata: Option<&BTreeMap<String, String>>,
    source: &mut dyn TensorSource,
) -> Result<Vec<TensorInfo>, SafetensorsError> {
    let path = path.as_ref();
    let infos = layout(specs).map_err(|k| SafetensorsError::new(path, k))?;
    let mut file = TempFile::create(path)?;
    write_body(&mut file, &infos, metadata, source).map_err(|k| SafetensorsError::new(path, k))?;
    file.commit()?;
    Ok(infos)
}
