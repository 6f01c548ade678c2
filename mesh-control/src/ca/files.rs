//! Writing certificate files: new files that must not exist yet,
//! replacing a file whole by writing a temporary file beside it and
//! renaming it over the old one, and replacing a set of files all at once
//! through a `..data` link, as Kubernetes updates a mounted secret.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
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

/// The link every file of a set written by [`replace_all`] goes through.
const DATA_LINK: &str = "..data";

/// Replaces the files `files` (name, contents, access) of `dir` all at
/// once, creating `dir` if needed, as Kubernetes updates a mounted
/// secret: the new files are written into a fresh hidden directory
/// (`..<stamp>`), the link `..data` is switched to it by one rename, and
/// each `dir/NAME` is a link to `..data/NAME`. A reader opening any of
/// the files sees the old set or the new one, never a mix, and a failure
/// before the switch changes nothing. The previous set is then removed.
/// Needs symbolic links (unix).
pub(crate) fn replace_all(dir: &Path, files: &[(&str, &[u8], Access)]) -> io::Result<()> {
    use std::os::unix::fs::symlink;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = || {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("{nanos}-{}-{n}", std::process::id())
    };
    // Puts a link to `target` at `path` by one rename.
    let link = |target: &Path, path: &Path| -> io::Result<()> {
        let tmp = dir.join(format!("..link-{}", unique()));
        symlink(target, &tmp)?;
        fs::rename(&tmp, path).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    };
    fs::create_dir_all(dir)?;
    let stamp = format!("..{}", unique());
    let data = dir.join(&stamp);
    fs::create_dir(&data)?;
    let written = files
        .iter()
        .try_for_each(|(name, contents, access)| create_new(&data.join(name), contents, *access))
        .and_then(|()| sync_dir(&data));
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&data);
        return Err(e);
    }
    let previous = fs::read_link(dir.join(DATA_LINK)).ok();
    if let Err(e) = link(Path::new(&stamp), &dir.join(DATA_LINK)) {
        let _ = fs::remove_dir_all(&data);
        return Err(e);
    }
    for (name, _, _) in files {
        let target = Path::new(DATA_LINK).join(name);
        let path = dir.join(name);
        if fs::read_link(&path).ok().as_deref() != Some(target.as_path()) {
            link(&target, &path)?;
        }
    }
    sync_dir(dir)?;
    if let Some(previous) = previous.filter(|p| p.as_os_str() != stamp.as_str()) {
        let _ = fs::remove_dir_all(dir.join(previous));
    }
    Ok(())
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
    use std::path::PathBuf;

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
    fn a_set_is_replaced_at_once_through_the_data_link() {
        let dir = scratch("set");
        let set = |key: &'static [u8], chain: &'static [u8]| {
            [
                ("key.pem", key, Access::Private),
                ("chain.pem", chain, Access::Public),
            ]
        };
        // An older layout: plain files.
        fs::write(dir.join("key.pem"), "plain").unwrap();
        replace_all(&dir, &set(b"k1", b"c1")).unwrap();
        assert_eq!(fs::read(dir.join("key.pem")).unwrap(), b"k1");
        let first = fs::read_link(dir.join(DATA_LINK)).unwrap();

        replace_all(&dir, &set(b"k2", b"c2")).unwrap();
        assert_eq!(fs::read(dir.join("key.pem")).unwrap(), b"k2");
        assert_eq!(fs::read(dir.join("chain.pem")).unwrap(), b"c2");
        assert_eq!(
            fs::read_link(dir.join("key.pem")).unwrap(),
            Path::new("..data/key.pem")
        );
        // The first set is gone; only the links and the current set stay.
        assert!(!dir.join(&first).exists());
        let current = fs::read_link(dir.join(DATA_LINK)).unwrap();
        let mut want = vec![
            "..data".to_owned(),
            current.to_string_lossy().into_owned(),
            "chain.pem".into(),
            "key.pem".into(),
        ];
        want.sort();
        assert_eq!(names(&dir), want);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_set_that_cannot_be_written_changes_nothing() {
        let dir = scratch("failed");
        replace_all(&dir, &[("key.pem", b"k1", Access::Private)]).unwrap();
        // The same name twice: the second cannot be created.
        let twice = [
            ("key.pem", &b"k2"[..], Access::Private),
            ("key.pem", &b"k3"[..], Access::Private),
        ];
        assert!(replace_all(&dir, &twice).is_err());
        assert_eq!(fs::read(dir.join("key.pem")).unwrap(), b"k1");
        assert_eq!(names(&dir).len(), 3, "{:?}", names(&dir));
        fs::remove_dir_all(dir).unwrap();
    }
}
