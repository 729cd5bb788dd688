//! PostgreSQL sink: `INSERT … SELECT FROM unnest(...) ON CONFLICT (id) DO NOTHING`, one
//! statement (one implicit transaction) per batch. A batch the database refuses for a data
//! reason (e.g. a string with `\u0000`, which `jsonb` does not accept) is retried row by row so
//! that only the offending records are rejected.

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::{Record, WriteOutcome};
use crate::error::{Error, Result};

/// Writes records into a table `(id TEXT PRIMARY KEY, doc JSONB NOT NULL, inserted_at TIMESTAMPTZ NOT NULL DEFAULT now())`.
pub struct PgSink {
    url: String,
    table: String,
    insert_many: String,
    insert_one: String,
    client: Mutex<Option<Client>>,
}

/// Quotes a table name `name` or `schema.name` (letters, digits, `_`); refuses anything else.
pub fn quote_table(name: &str) -> Result<String> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 63
            && p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 || !parts.iter().all(|p| ok_part(p)) {
        return Err(Error::Config(format!("bad table name {name:?} (want [schema.]name of letters, digits, _)")));
    }
    Ok(parts.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join("."))
}

fn db_err(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(d) => Error::Database(format!("{} ({})", d.message(), d.code().code())),
        None => Error::Database(e.to_string()),
    }
}

/// True for errors caused by the data (SQLSTATE classes 22 and 23): retrying will not help.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        let c = c.code();
        (c.starts_with("22") || c.starts_with("23")) && *c != *SqlState::UNIQUE_VIOLATION.code()
    })
}

impl PgSink {
    /// Connects (no TLS: a local or private-network database).
    pub async fn connect(url: &str, table: &str) -> Result<PgSink> {
        let quoted = quote_table(table)?;
        let sink = PgSink {
            url: url.to_string(),
            table: table.to_string(),
            insert_many: format!(
                "INSERT INTO {quoted} (id, doc) SELECT u.id, u.doc::jsonb FROM unnest($1::text[], $2::text[]) AS u(id, doc) \
                 ON CONFLICT (id) DO NOTHING"
            ),
            insert_one: format!("INSERT INTO {quoted} (id, doc) VALUES ($1, $2::text::jsonb) ON CONFLICT (id) DO NOTHING"),
            client: Mutex::new(None),
        };
        drop(sink.client().await?);
        Ok(sink)
    }

    /// The table name as given.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = tokio_postgres::connect(&self.url, NoTls).await.map_err(db_err)?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("drain: PostgreSQL connection closed: {e}");
                }
            });
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// Creates the table if it does not exist.
    pub async fn ensure_table(&self) -> Result<()> {
        let quoted = quote_table(&self.table)?;
        let guard = self.client().await?;
        let c = guard.as_ref().expect("connected");
        c.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {quoted} (id TEXT PRIMARY KEY, doc JSONB NOT NULL, \
             inserted_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ))
        .await
        .map_err(db_err)
    }

    /// Writes a batch. Committed = inserted or already present; data errors reject single rows.
    pub async fn write(&self, records: &[Record]) -> Result<WriteOutcome> {
        let mut guard = self.client().await?;
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let docs: Vec<String> = records.iter().map(|r| r.doc.to_string()).collect();
        let c = guard.as_ref().expect("connected");
        match c.execute(&self.insert_many, &[&ids, &docs]).await {
            Ok(n) => Ok(WriteOutcome { committed: (0..records.len()).collect(), inserted: n, rejected: Vec::new() }),
            Err(e) if is_data_error(&e) => {
                // Find the bad rows one by one.
                let mut out = WriteOutcome::default();
                for (i, (id, doc)) in ids.iter().zip(&docs).enumerate() {
                    match c.execute(&self.insert_one, &[id, doc]).await {
                        Ok(n) => {
                            out.committed.push(i);
                            out.inserted += n;
                        }
                        Err(e) if is_data_error(&e) => out.rejected.push((i, db_err(e).to_string())),
                        Err(e) => {
                            if c.is_closed() {
                                *guard = None;
                            }
                            return Err(db_err(e));
                        }
                    }
                }
                Ok(out)
            }
            Err(e) => {
                if c.is_closed() {
                    *guard = None;
                }
                Err(db_err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(quote_table("ops").unwrap(), "\"ops\"");
        assert_eq!(quote_table("app.ops_2").unwrap(), "\"app\".\"ops_2\"");
        assert!(quote_table("ops; drop table x").is_err());
        assert!(quote_table("1ops").is_err());
        assert!(quote_table("a.b.c").is_err());
        assert!(quote_table("").is_err());
    }
}
