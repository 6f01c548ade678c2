//! Writing certificate files: new files that must not exist yet, and
//! replacing a file whole by writing a temporary file beside it and
//! renaming it over the old one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read a file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Certificates: readable as the umask allows.
    Public,
    /// Private keys: mode 0600 on unix.
    Private,
}

/// Creates `path` with `contents`, failing with `AlreadyExists` if it is
/// there. A file left half-written by a failure is removed.
pub(crate) fn create_new(path: &Path, contents: &[u8], access: Access) -> io::Result<()> {
    let mut file = open_new(path, access)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// A file written beside its final path, not yet in place; dropped
/// without [`Staged::commit`], it is removed.
#[derive(Debug)]
pub(crate) struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// Writes `contents` to a fresh temporary file in `path`'s directory
    /// and flushes it to disk.
    pub(crate) fn write(path: &Path, contents: &[u8], access: Access) -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let staged = Self {
            tmp,
            path: path.to_owned(),
            committed: false,
        };
        let mut file = open_new(&staged.tmp, access)?;
        file.write_all(contents)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// The path it will replace.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file over the final path, atomically on
    /// POSIX file systems: a reader sees the old file or the new one.
    pub(crate) fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Flushes a directory's entries (the renames in it) to disk; a no-op
/// where directories cannot be opened as files.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn open_new(path: &Path, access: Access) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::Private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = access;
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mesh-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn create_new_never_replaces() {
        let dir = scratch("create");
        let path = dir.join("a.pem");
        create_new(&path, b"one", Access::Public).unwrap();
        let err = create_new(&path, b"two", Access::Public).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn staged_file_replaces_only_on_commit() {
        let dir = scratch("staged");
        let path = dir.join("key.pem");
        fs::write(&path, "old").unwrap();

        let abandoned = Staged::write(&path, b"new", Access::Private).unwrap();
        assert_eq!(names(&dir).len(), 2, "the new file waits beside the old");
        drop(abandoned);
        assert_eq!(names(&dir), ["key.pem"]);
        assert_eq!(fs::read(&path).unwrap(), b"old");

        Staged::write(&path, b"new", Access::Private)
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(names(&dir), ["key.pem"]);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }
}
