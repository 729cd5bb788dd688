//! File modes of the data directory: it holds every message body and the receipt-handle secret,
//! so it is created `0700` and every file in it `0600` (owner only), whatever the umask; and at
//! start [`wider_than_private`] finds what is readable or writable by others (a directory made by
//! hand, files copied from a backup), which the server logs as a warning. Modes are not changed
//! behind the operator's back: they may have widened them on purpose (a backup group).
//!
//! Every creation site goes through here: [`create_dir_all`] (the data directory),
//! [`create_options`] (the write-ahead logs' temporary files, the server's `LOCK` and
//! `receipt.key`) and [`touch`] (the redb file, created before redb opens it, since redb takes a
//! path and creates with the process's default mode). On other systems than Unix these are the
//! plain calls.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Mode of the data directory (and any parent sluice creates for it).
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the data directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents `0700`. An existing directory keeps its mode.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// `OpenOptions` whose `create` makes the file `0600`; the caller adds read/write/create/truncate.
pub fn create_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates `path` empty and `0600` if it does not exist yet (an existing file is left as it is).
pub fn touch(path: &Path) -> io::Result<File> {
    create_options().write(true).create(true).truncate(false).open(path)
}

/// The directory itself and the files directly in it (sluice makes no subdirectories) whose
/// permission bits give anything to group or others, with their modes (`0o755`...). Empty on
/// other systems than Unix.
pub fn wider_than_private(dir: &Path) -> io::Result<Vec<(PathBuf, u32)>> {
    let mut wide = Vec::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |m: &std::fs::Metadata| m.permissions().mode() & 0o7777;
        let dir_mode = mode(&std::fs::metadata(dir)?);
        if dir_mode & 0o077 != 0 {
            wide.push((dir.to_path_buf(), dir_mode));
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_file() && mode(&meta) & 0o077 != 0 {
                wide.push((entry.path(), mode(&meta)));
            }
        }
        wide.sort();
    }
    Ok(wide)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A store opened in a fresh directory: the directory 0700, every file 0600 (the redb file,
    /// both logs), even under a permissive umask's default of 0755/0644.
    #[test]
    fn a_new_store_is_private() {
        let dir = temp("new").join("nested");
        let backend = crate::embedded::EmbeddedBackend::open(&dir.join("sluice.redb")).unwrap();
        drop(backend);
        assert_eq!(mode(&dir), DIR_MODE);
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), FILE_MODE, "{}", path.display());
            files += 1;
        }
        assert!(files >= 3, "sluice.redb and both logs");
        assert!(wider_than_private(&dir).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }

    #[test]
    fn wider_modes_are_found() {
        let dir = temp("wide");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let open = dir.join("receipt.key");
        std::fs::write(&open, b"x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        touch(&dir.join("private")).unwrap();
        assert_eq!(wider_than_private(&dir).unwrap(), vec![(dir.clone(), 0o755), (open, 0o644)]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
