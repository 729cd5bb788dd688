//! `sluice check`: verifies a stopped store, for the operator to run before (or instead of) a
//! salvage. It writes nothing to the logs or the manifest; opening `sluice.redb` may let redb finish
//! its own crash recovery of that file (as the next start would). The manifest's files must all be there, both write-ahead logs must read
//! without damage (a torn tail is reported but is not damage), and every record of the store file
//! must be readable; the caller verifies each message body record's own checksum (the engine owns
//! that format).

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::embedded::open::LOG_EXTENSIONS;
use crate::manifest;
use crate::wal;

/// What the check found. `damage` empty means healthy.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per fact worth printing (files, record counts, torn tails).
    pub notes: Vec<String>,
    /// One line per damaged thing, naming the file and the offset or key.
    pub damage: Vec<String>,
}

/// Checks the store whose file is `store` (`DATA_DIR/sluice.redb`); `verify_body` is called with
/// each body record and says what is wrong with it, if anything.
pub fn check(store: &Path, verify_body: &dyn Fn(&[u8]) -> Result<(), String>) -> Report {
    let mut report = Report::default();
    match manifest::missing(store) {
        Ok(Some(gone)) => {
            for file in gone {
                report.damage.push(format!("{}: missing (listed in the manifest)", file.display()));
            }
        }
        Ok(None) => {
            report
                .notes
                .push(format!("{}: no manifest (a store from before manifests)", manifest::path_for(store).display()));
            let files = manifest::expected_files(store);
            let present = files.iter().filter(|f| f.exists()).count();
            if present != files.len() {
                for file in files.iter().filter(|f| !f.exists()) {
                    report.damage.push(format!("{}: missing", file.display()));
                }
            }
        }
        Err(e) => report.damage.push(e.to_string()),
    }
    for ext in LOG_EXTENSIONS {
        check_log(&store.with_extension(ext), &mut report);
    }
    if store.exists() {
        check_db(store, verify_body, &mut report);
    }
    report
}

fn check_log(path: &PathBuf, report: &mut Report) {
    let Ok(file) = std::fs::File::open(path) else { return };
    match wal::scan(path, &file) {
        Ok(scan) => {
            report.notes.push(format!(
                "{}: epoch {}, {} readable records",
                path.display(),
                scan.epoch,
                scan.records.len()
            ));
            if scan.header_torn {
                report.notes.push(format!("{}: header torn (its records are not replayed)", path.display()));
            }
            for d in scan.damage {
                report.damage.push(format!(
                    "{}: damaged record at offset {} ({}), {} bytes up to the next valid record",
                    path.display(),
                    d.offset,
                    d.reason,
                    d.len
                ));
            }
            if let Some(t) = scan.torn_tail {
                report.notes.push(format!(
                    "{}: torn last record at offset {} (cut off at start-up)",
                    path.display(),
                    t.offset
                ));
            }
        }
        Err(e) => report.damage.push(e.to_string()),
    }
}

const TABLES: [&str; 4] = ["queues", "meta", "kv", "doomed"];

fn check_db(store: &Path, verify_body: &dyn Fn(&[u8]) -> Result<(), String>, report: &mut Report) {
    let db = match redb::Database::open(store) {
        Ok(db) => db,
        Err(e) => {
            report.damage.push(format!("{}: cannot be opened: {e}", store.display()));
            return;
        }
    };
    let tx = match db.begin_read() {
        Ok(tx) => tx,
        Err(e) => {
            report.damage.push(format!("{}: {e}", store.display()));
            return;
        }
    };
    let body: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");
    match tx.open_table(body) {
        Ok(table) => match table.iter() {
            Ok(iter) => {
                let mut bodies = 0u64;
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            bodies += 1;
                            if let Err(why) = verify_body(v.value()) {
                                let (queue, seq) = k.value();
                                report.damage.push(format!(
                                    "{}: message body (queue {queue:016x}, seq {seq}): {why}",
                                    store.display()
                                ));
                            }
                        }
                        Err(e) => {
                            report.damage.push(format!("{}: body table unreadable: {e}", store.display()));
                            break;
                        }
                    }
                }
                report.notes.push(format!("{}: {bodies} message bodies verified", store.display()));
            }
            Err(e) => report.damage.push(format!("{}: body table unreadable: {e}", store.display())),
        },
        Err(redb::TableError::TableDoesNotExist(_)) => {}
        Err(e) => report.damage.push(format!("{}: body table unreadable: {e}", store.display())),
    }
    // The other tables: every record must at least be readable.
    for name in TABLES {
        let counted = match name {
            "queues" => count(&tx, TableDefinition::<u64, &[u8]>::new(name)),
            "meta" => count(&tx, TableDefinition::<(u64, u64), &[u8]>::new(name)),
            "kv" => count(&tx, TableDefinition::<(u64, &[u8]), &[u8]>::new(name)),
            _ => count(&tx, TableDefinition::<u64, u64>::new(name)),
        };
        match counted {
            Ok(n) => report.notes.push(format!("{}: table {name}: {n} records readable", store.display())),
            Err(e) => report.damage.push(format!("{}: table {name} unreadable: {e}", store.display())),
        }
    }
}

fn count<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<u64, String> {
    let table = match tx.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.to_string()),
    };
    let mut n = 0;
    for item in table.iter().map_err(|e| e.to_string())? {
        item.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}
