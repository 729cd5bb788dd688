//! `sluice check DATA_DIR`: verifies a stopped store (the server must not be running: the check
//! takes the data directory's `LOCK`) and prints a report; the exit code is non-zero on damage.
//! The store's files, logs and records are checked by `sluice_store::check`; each message body is
//! decoded and compared with the MD5 stored with it by the engine.

use std::path::Path;

/// Checks `dir` and returns the printed report and whether anything is damaged.
pub fn run(dir: &Path) -> Result<(String, bool), String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let lock_path = dir.join("LOCK");
    // Only if there is one: a check creates nothing in the directory it verifies.
    let _lock = match std::fs::OpenOptions::new().write(true).open(&lock_path) {
        Ok(lock) => {
            if lock.try_lock().is_err() {
                return Err(format!("{} is in use by a running sluice: stop it first", dir.display()));
            }
            Some(lock)
        }
        Err(_) => None,
    };
    let report = sluice_store::check::check(&dir.join("sluice.redb"), &sluice_engine::verify_body_record);
    let mut out = String::new();
    for note in &report.notes {
        out.push_str(&format!("ok      {note}\n"));
    }
    for damage in &report.damage {
        out.push_str(&format!("DAMAGED {damage}\n"));
    }
    if report.damage.is_empty() {
        out.push_str(&format!("{}: no damage found\n", dir.display()));
    } else {
        out.push_str(&format!(
            "{}: {} damaged item(s). `sluice serve --salvage` keeps every readable record and drops these \
             (the server quarantines damaged message bodies by itself)\n",
            dir.display(),
            report.damage.len()
        ));
    }
    Ok((out, !report.damage.is_empty()))
}
