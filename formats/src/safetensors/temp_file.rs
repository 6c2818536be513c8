//! Output files written under a temporary name in their directory and renamed into place only
//! when complete, so that a failed or interrupted write never leaves a plausible-looking file.

use super::error::SafetensorsError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name used while writing `path`: `.NAME.PID.partial` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// A file being written under its temporary name; dropped without [`commit`](Self::commit),
/// the temporary file is removed.
pub(crate) struct TempFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
    done: bool,
}

impl TempFile {
    /// Creates (or truncates) the temporary file for `target`.
    pub(crate) fn create(target: &Path) -> Result<TempFile, SafetensorsError> {
        let temp = temp_path(target);
        let file = File::create(&temp).map_err(|e| SafetensorsError::io(&temp, e))?;
        Ok(TempFile {
            target: target.to_path_buf(),
            temp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            done: false,
        })
    }

    /// The final path.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes and syncs the data to disk; the file keeps its temporary name.
    pub(crate) fn finish(&mut self) -> Result<(), SafetensorsError> {
        if let Some(out) = self.out.take() {
            let file = out
                .into_inner()
                .map_err(|e| SafetensorsError::io(&self.temp, e.into_error()))?;
            file.sync_all()
                .map_err(|e| SafetensorsError::io(&self.temp, e))?;
        }
        Ok(())
    }

    /// Finishes the file if needed and renames it to its final name.
    pub(crate) fn commit(mut self) -> Result<(), SafetensorsError> {
        self.finish()?;
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| SafetensorsError::io(&self.target, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.out {
            Some(out) => out.write(buf),
            None => Err(std::io::Error::other("write after the file was finished")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}
