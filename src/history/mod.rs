//! The call history: connections, streams, rooms as calls with their participants, recordings and
//! hook outcomes, kept in SQLite (embedded, the default) or PostgreSQL through sqlx.

use serde::{Deserialize, Serialize};

/// The `[history]` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// `postgres://user:password@host/db`, or `sqlite://path`; unset: `DATA_DIR/history.db`.
    pub database_url: Option<String>,
    /// No history at all.
    pub disabled: bool,
}
