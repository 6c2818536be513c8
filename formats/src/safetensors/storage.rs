//! Access to the bytes of an open file: a read-only memory map, or positioned reads.

use std::borrow::Cow;
use std::fs::File;
use std::io;

pub use crate::read_mode::ReadMode;

/// An open file's bytes.
pub(crate) enum Storage {
    Mmap(memmap2::Mmap),
    File(File),
}

impl Storage {
    /// Opens `file` in `mode`, falling back to reads if it cannot be mapped.
    pub(crate) fn new(file: File, mode: ReadMode) -> Storage {
        match mode {
            // SAFETY: the map is read-only; a file truncated by another process while mapped
            // can raise SIGBUS, as with every mmap-based model loader.
            ReadMode::Mmap => match unsafe { memmap2::Mmap::map(&file) } {
                Ok(m) => Storage::Mmap(m),
                Err(_) => Storage::File(file),
            },
            ReadMode::Buffered => Storage::File(file),
        }
    }

    /// The mode actually in use.
    pub(crate) fn mode(&self) -> ReadMode {
        match self {
            Storage::Mmap(_) => ReadMode::Mmap,
            Storage::File(_) => ReadMode::Buffered,
        }
    }

    /// Lets the kernel drop the mapped pages of `len` bytes at `offset` (no effect on reads, or
    /// when the range is not inside the map). Later accesses read the bytes from the file again.
    pub(crate) fn release(&self, offset: u64, len: u64) {
        #[cfg(unix)]
        if let Storage::Mmap(m) = self {
            let (Ok(start), Ok(n)) = (usize::try_from(offset), usize::try_from(len)) else {
                return;
            };
            if n == 0 || start.checked_add(n).is_none_or(|end| end > m.len()) {
                return;
            }
            // SAFETY: the map is a read-only shared file mapping that is never written, so
            // dropping its pages only discards cached copies of the file's bytes; any later
            // access faults the same bytes back in from the file.
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, n) };
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }

    /// `len` bytes at `offset`, which the caller has checked lie inside the file.
    pub(crate) fn bytes(&self, offset: u64, len: u64) -> io::Result<Cow<'_, [u8]>> {
        let range = || -> io::Result<std::ops::Range<usize>> {
            let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
            let n = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
            Ok(start..start.checked_add(n).ok_or(io::ErrorKind::InvalidInput)?)
        };
        match self {
            Storage::Mmap(m) => m
                .get(range()?)
                .map(Cow::Borrowed)
                .ok_or_else(|| io::ErrorKind::UnexpectedEof.into()),
            Storage::File(f) => {
                let mut buf = vec![0u8; range()?.len()];
                read_exact_at(f, &mut buf, offset)?;
                Ok(Cow::Owned(buf))
            }
        }
    }
}

/// Fills `buf` from `file` at `offset` without moving a shared cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let (mut buf, mut offset) = (buf, offset);
        while !buf.is_empty() {
            match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
