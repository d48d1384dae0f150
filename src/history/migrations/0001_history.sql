-- The call history. Portable SQL (SQLite and PostgreSQL): text ids, times as BIGINT
-- milliseconds since the epoch (UTC), JSON as TEXT.
CREATE TABLE IF NOT EXISTS connections (
    session_id TEXT PRIMARY KEY,
    app_key TEXT NOT NULL,
    login TEXT NOT NULL,
    client TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);

CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    results TEXT
);
CREATE INDEX IF NOT EXISTS calls_room ON calls (room);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);

CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    login TEXT NOT NULL,
    session_id TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    left_at BIGINT
);
CREATE INDEX IF NOT EXISTS participants_call ON participants (call_id);
CREATE INDEX IF NOT EXISTS participants_login ON participants (login);

CREATE TABLE IF NOT EXISTS streams (
    media_session_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    published BIGINT NOT NULL,
    app_key TEXT NOT NULL,
    session_id TEXT NOT NULL,
    login TEXT NOT NULL,
    provider TEXT NOT NULL,
    call_id TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    end_info TEXT
);
CREATE INDEX IF NOT EXISTS streams_name ON streams (name);
CREATE INDEX IF NOT EXISTS streams_started ON streams (started_at);

CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY,
    call_id TEXT,
    stream_name TEXT NOT NULL,
    file_name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS recordings_call ON recordings (call_id);

CREATE TABLE IF NOT EXISTS hook_outcomes (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    app_key TEXT NOT NULL,
    method TEXT NOT NULL,
    session_id TEXT NOT NULL,
    status BIGINT,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    millis BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS hook_outcomes_at ON hook_outcomes (at);
