//! Reading one safetensors file.

use super::error::{ErrorKind, SafetensorsError};
use super::header::{parse_header, Header, TensorInfo};
use super::storage::{read_exact_at, ReadMode, Storage};
use super::view::TensorView;
use super::MAX_HEADER_SIZE;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// An open, validated safetensors file.
///
/// The header is checked completely when the file is opened (see [`parse_header`]), so every
/// tensor it lists can be read. Tensors are listed in name order.
pub struct SafetensorsFile {
    path: PathBuf,
    header: Header,
    data_start: u64,
    storage: Storage,
}

impl SafetensorsFile {
    /// Opens and validates `path`, memory-mapping it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SafetensorsError> {
        Self::open_with(path, ReadMode::Mmap)
    }

    /// Opens and validates `path` with the given data access mode.
    pub fn open_with(path: impl AsRef<Path>, mode: ReadMode) -> Result<Self, SafetensorsError> {
        let path = path.as_ref().to_path_buf();
        let io = |e| SafetensorsError::io(&path, e);
        let fail = |kind| SafetensorsError::new(&path, kind);
        let file = File::open(&path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        if file_len < 8 {
            return Err(fail(ErrorKind::FileTooShort { len: file_len }));
        }
        let mut len_bytes = [0u8; 8];
        read_exact_at(&file, &mut len_bytes, 0).map_err(io)?;
        let n = u64::from_le_bytes(len_bytes);
        if n > MAX_HEADER_SIZE {
            return Err(fail(ErrorKind::HeaderTooLarge {
                len: n,
                max: MAX_HEADER_SIZE,
            }));
        }
        if n > file_len - 8 {
            return Err(fail(ErrorKind::HeaderBeyondFile { len: n, file_len }));
        }
        // n <= MAX_HEADER_SIZE, so this allocation is capped.
        let mut json = vec![0u8; n as usize];
        read_exact_at(&file, &mut json, 8).map_err(io)?;
        let data_start = 8 + n;
        let header = parse_header(&json, file_len - data_start).map_err(fail)?;
        let storage = Storage::new(file, mode);
        Ok(SafetensorsFile {
            path,
            header,
            data_start,
            storage,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The `__metadata__` map, if any.
    pub fn metadata(&self) -> Option<&BTreeMap<String, String>> {
        self.header.metadata()
    }

    /// Byte offset of the data section (8 + header length).
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// How the data is read (a failed map falls back to [`ReadMode::Buffered`]).
    pub fn read_mode(&self) -> ReadMode {
        self.storage.mode()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.header.tensors().len()
    }

    /// Whether the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.header.tensors().is_empty()
    }

    /// The tensors' header entries, sorted by name.
    pub fn infos(&self) -> &[TensorInfo] {
        self.header.tensors()
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.header.tensors().iter().map(TensorInfo::name)
    }

    /// Whether a tensor named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.header.tensor(name).is_some()
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SafetensorsError> {
        let info = self.header.tensor(name).ok_or_else(|| {
            SafetensorsError::new(&self.path, ErrorKind::TensorNotFound(name.to_owned()))
        })?;
        self.view(info)
    }

    /// Tells the kernel that the pages of the tensor described by `info` (one of this file's
    /// entries) will not be needed again, so that streaming a checkpoint through memory does not
    /// keep it all resident. A later read of the tensor still works: its pages are read again
    /// from the file. Pages shared with a neighbouring tensor are dropped too (and read again if
    /// that tensor is used later). Nothing happens when the file is read rather than mapped.
    pub fn release(&self, info: &TensorInfo) {
        self.storage
            .release(self.data_start + info.data_offsets().0, info.byte_len());
    }

    /// Every tensor, in name order.
    pub fn tensors(&self) -> impl Iterator<Item = Result<TensorView<'_>, SafetensorsError>> + '_ {
        self.header.tensors().iter().map(|info| self.view(info))
    }

    /// A view of the tensor described by `info`, one of this file's entries.
    pub(crate) fn view<'a>(
        &'a self,
        info: &'a TensorInfo,
    ) -> Result<TensorView<'a>, SafetensorsError> {
        let data = self
            .storage
            .bytes(self.data_start + info.data_offsets().0, info.byte_len())
            .map_err(|e| SafetensorsError::io(&self.path, e))?;
        Ok(TensorView::new(&self.path, info, data))
    }
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("path", &self.path)
            .field("tensors", &self.len())
            .field("read_mode", &self.read_mode())
            .finish()
    }
}
