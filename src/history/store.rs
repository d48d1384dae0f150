//! The history's tables through sqlx's `Any` driver, so SQLite (embedded, the default) and
//! PostgreSQL run the same queries: portable SQL, `$N` placeholders (both understand them), times
//! as milliseconds. The migrations are embedded and run at open.

use serde_json::{json, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    /// Text.
    Text(String),
    /// A number (times, flags).
    Int(i64),
    /// Text or NULL.
    MaybeText(Option<String>),
    /// A number or NULL.
    MaybeInt(Option<i64>),
}

/// The database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
}

fn migrator() -> Migrator {
    Migrator {
        migrations: Cow::Owned(vec![Migration::new(
            1,
            Cow::Borrowed("history"),
            MigrationType::Simple,
            Cow::Borrowed(include_str!("migrations/0001_history.sql")),
            false,
        )]),
        ..Migrator::DEFAULT
    }
}

/// Milliseconds as ISO 8601 UTC.
pub fn iso_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .map(crate::hooks::iso)
        .unwrap_or_default()
}

fn opt_iso(ms: Option<i64>) -> Value {
    ms.map(|m| Value::String(iso_ms(m))).unwrap_or(Value::Null)
}

fn get_i(r: &AnyRow, c: &str) -> i64 {
    r.try_get::<i64, _>(c).unwrap_or(0)
}
fn get_oi(r: &AnyRow, c: &str) -> Option<i64> {
    r.try_get::<Option<i64>, _>(c).ok().flatten()
}
fn get_s(r: &AnyRow, c: &str) -> String {
    r.try_get::<String, _>(c).unwrap_or_default()
}
fn get_os(r: &AnyRow, c: &str) -> Option<String> {
    r.try_get::<Option<String>, _>(c).ok().flatten()
}

/// `sql` with its placeholders bound, in order.
fn bound<'q>(
    sql: &'q str,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    binds.into_iter().fold(sqlx::query(sql), |q, b| match b {
        Bind::Text(s) => q.bind(s),
        Bind::Int(i) => q.bind(i),
        Bind::MaybeText(s) => q.bind(s),
        Bind::MaybeInt(i) => q.bind(i),
    })
}

/// What `calls/find_all` selects.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only this room.
    pub room: Option<String>,
    /// Only calls this login took part in.
    pub login: Option<String>,
    /// Started at or after (ms).
    pub from: Option<i64>,
    /// Started at or before (ms).
    pub to: Option<i64>,
    /// At most this many.
    pub limit: i64,
    /// Skipping this many.
    pub offset: i64,
}

impl Store {
    /// Opens (creating when needed) the database at `url` and brings its tables up to date.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        if url.starts_with("sqlite:") {
            // Readers (REST) do not block the writer, and a crash loses no committed row.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        migrator().run(&pool).await?;
        Ok(Store { pool })
    }

    /// Runs one statement.
    pub async fn exec(&self, sql: &str, binds: Vec<Bind>) -> Result<u64, sqlx::Error> {
        Ok(bound(sql, binds).execute(&self.pool).await?.rows_affected())
    }

    async fn rows(&self, sql: &str, binds: Vec<Bind>) -> Result<Vec<AnyRow>, sqlx::Error> {
        bound(sql, binds).fetch_all(&self.pool).await
    }

    /// Closes what a previous run left open (a crash, a kill): calls end at their last known
    /// moment, and so do their participants and streams.
    pub async fn close_dangling(&self) -> Result<(), sqlx::Error> {
        self.exec(
            "UPDATE calls SET ended_at = COALESCE((SELECT MAX(COALESCE(p.left_at, p.joined_at)) \
             FROM participants p WHERE p.call_id = calls.id), started_at) WHERE ended_at IS NULL",
            vec![],
        )
        .await?;
        self.exec(
            "UPDATE participants SET left_at = (SELECT c.ended_at FROM calls c \
             WHERE c.id = participants.call_id) WHERE left_at IS NULL",
            vec![],
        )
        .await?;
        self.exec(
            "UPDATE streams SET ended_at = started_at, end_info = 'Server restarted' WHERE ended_at IS NULL",
            vec![],
        )
        .await?;
        self.exec(
            "UPDATE connections SET ended_at = started_at WHERE ended_at IS NULL",
            vec![],
        )
        .await?;
        Ok(())
    }

    async fn call_json(&self, r: &AnyRow) -> Result<Value, sqlx::Error> {
        let id = get_s(r, "id");
        let participants = self
            .rows(
                "SELECT login, session_id, joined_at, left_at FROM participants WHERE call_id = $1 \
                 ORDER BY joined_at",
                vec![Bind::Text(id.clone())],
            )
            .await?
            .iter()
            .map(|p| {
                json!({ "login": get_s(p, "login"), "sessionId": get_s(p, "session_id"),
                        "joinedAt": iso_ms(get_i(p, "joined_at")), "leftAt": opt_iso(get_oi(p, "left_at")) })
            })
            .collect::<Vec<_>>();
        let recordings = self
            .rows(
                "SELECT stream_name, file_name, started_at, duration_ms FROM recordings \
                 WHERE call_id = $1 ORDER BY started_at",
                vec![Bind::Text(id.clone())],
            )
            .await?
            .iter()
            .map(|x| {
                json!({ "streamName": get_s(x, "stream_name"), "fileName": get_s(x, "file_name"),
                        "startedAt": iso_ms(get_i(x, "started_at")),
                        "duration": get_i(x, "duration_ms") as f64 / 1000.0 })
            })
            .collect::<Vec<_>>();
        let started = get_i(r, "started_at");
        let ended = get_oi(r, "ended_at");
        let results = get_os(r, "results")
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null);
        Ok(json!({
            "id": id,
            "room": get_s(r, "room"),
            "startedAt": iso_ms(started),
            "endedAt": opt_iso(ended),
            "duration": ended.map(|e| (e - started) as f64 / 1000.0),
            "participants": participants,
            "recordings": recordings,
            "results": results,
        }))
    }

    /// Calls, newest first.
    pub async fn calls(&self, f: &CallFilter) -> Result<Vec<Value>, sqlx::Error> {
        let mut sql =
            String::from("SELECT id, room, started_at, ended_at, results FROM calls WHERE 1 = 1");
        let mut binds = Vec::new();
        let mut n = 0;
        let mut next = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            n += 1;
            format!("${n}")
        };
        if let Some(room) = &f.room {
            let p = next(&mut binds, Bind::Text(room.clone()));
            sql += &format!(" AND room = {p}");
        }
        if let Some(login) = &f.login {
            let p = next(&mut binds, Bind::Text(login.clone()));
            sql += &format!(" AND id IN (SELECT call_id FROM participants WHERE login = {p})");
        }
        if let Some(from) = f.from {
            let p = next(&mut binds, Bind::Int(from));
            sql += &format!(" AND started_at >= {p}");
        }
        if let Some(to) = f.to {
            let p = next(&mut binds, Bind::Int(to));
            sql += &format!(" AND started_at <= {p}");
        }
        let lp = next(&mut binds, Bind::Int(f.limit));
        let op = next(&mut binds, Bind::Int(f.offset));
        sql += &format!(" ORDER BY started_at DESC, id LIMIT {lp} OFFSET {op}");
        let mut out = Vec::new();
        for r in self.rows(&sql, binds).await? {
            out.push(self.call_json(&r).await?);
        }
        Ok(out)
    }

    /// One call.
    pub async fn call(&self, id: &str) -> Result<Option<Value>, sqlx::Error> {
        let rows = self
            .rows(
                "SELECT id, room, started_at, ended_at, results FROM calls WHERE id = $1",
                vec![Bind::Text(id.to_owned())],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Some(self.call_json(r).await?)),
            None => Ok(None),
        }
    }

    /// Keeps the site's results with a call; false when there is no such call.
    pub async fn set_results(&self, id: &str, results: &Value) -> Result<bool, sqlx::Error> {
        let n = self
            .exec(
                "UPDATE calls SET results = $1 WHERE id = $2",
                vec![Bind::Text(results.to_string()), Bind::Text(id.to_owned())],
            )
            .await?;
        Ok(n > 0)
    }

    /// Streams (publishers and viewers), newest first.
    pub async fn streams(
        &self,
        name: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Value>, sqlx::Error> {
        let mut sql = String::from(
            "SELECT media_session_id, name, published, app_key, session_id, login, provider, call_id, \
             started_at, ended_at, end_info FROM streams WHERE 1 = 1",
        );
        let mut binds = Vec::new();
        if let Some(n) = name {
            binds.push(Bind::Text(n.to_owned()));
            sql += &format!(" AND name = ${}", binds.len());
        }
        if let Some(f) = from {
            binds.push(Bind::Int(f));
            sql += &format!(" AND started_at >= ${}", binds.len());
        }
        if let Some(t) = to {
            binds.push(Bind::Int(t));
            sql += &format!(" AND started_at <= ${}", binds.len());
        }
        binds.push(Bind::Int(limit));
        sql += &format!(" ORDER BY started_at DESC LIMIT ${}", binds.len());
        Ok(self
            .rows(&sql, binds)
            .await?
            .iter()
            .map(|r| {
                let started = get_i(r, "started_at");
                let ended = get_oi(r, "ended_at");
                json!({
                    "mediaSessionId": get_s(r, "media_session_id"),
                    "name": get_s(r, "name"),
                    "published": get_i(r, "published") != 0,
                    "appKey": get_s(r, "app_key"),
                    "sessionId": get_s(r, "session_id"),
                    "login": get_s(r, "login"),
                    "mediaProvider": get_s(r, "provider"),
                    "callId": get_os(r, "call_id"),
                    "startedAt": iso_ms(started),
                    "endedAt": opt_iso(ended),
                    "duration": ended.map(|e| (e - started) as f64 / 1000.0),
                    "info": get_os(r, "end_info"),
                })
            })
            .collect())
    }
}
