//! The data directory's manifest (`sluice.manifest` beside the store file): the files that must be
//! there (the store file and both write-ahead logs), so that a deleted or lost one stops start-up
//! instead of being silently re-created empty. Written once, atomically (temporary file, fsync,
//! rename, directory fsync); a store from before the manifest gets one when all its files are found.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StoreError;

const HEADER: &str = "sluice-manifest 1";

fn io(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", what.display()))
}

/// The manifest's path for the store file at `store`.
pub fn path_for(store: &Path) -> PathBuf {
    store.with_extension("manifest")
}

/// The files a store at `store` consists of: the store file and its two logs.
pub fn expected_files(store: &Path) -> Vec<PathBuf> {
    let mut files = vec![store.to_path_buf()];
    files.extend(crate::embedded::LOG_EXTENSIONS.iter().map(|ext| store.with_extension(ext)));
    files
}

/// What the manifest says is missing: `Ok(None)` if there is no manifest (a new store, or one
/// from before manifests), else the listed files that are not there.
pub fn missing(store: &Path) -> Result<Option<Vec<PathBuf>>, StoreError> {
    let manifest = path_for(store);
    let text = match std::fs::read_to_string(&manifest) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&manifest, e)),
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(StoreError::Corrupt(format!("{} is not a sluice manifest", manifest.display())));
    }
    let dir = store.parent().unwrap_or(Path::new("."));
    let mut gone = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(name) = line.strip_prefix("file ") else {
            return Err(StoreError::Corrupt(format!("{}: unreadable line {line:?}", manifest.display())));
        };
        let file = dir.join(name);
        if !file.exists() {
            gone.push(file);
        }
    }
    Ok(Some(gone))
}

/// Writes the manifest listing [`expected_files`], atomically.
pub fn write(store: &Path) -> Result<(), StoreError> {
    let manifest = path_for(store);
    let tmp = manifest.with_extension("manifest.tmp");
    let mut text = format!("{HEADER}\n");
    for file in expected_files(store) {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        text.push_str(&format!("file {name}\n"));
    }
    let written = (|| {
        let mut f = crate::files::create_options().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &manifest)?;
        if let Some(dir) = manifest.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(|e| io(&manifest, e))
}
