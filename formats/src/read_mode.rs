//! How readers access tensor data, shared by every format.

/// How tensor data is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Memory-map the file (the default); if mapping fails, fall back to [`ReadMode::Buffered`].
    #[default]
    Mmap,
    /// Read each tensor into memory with ordinary reads when it is requested (for filesystems
    /// where mmap is slow or unavailable).
    Buffered,
}
