-- name: lock_migrations
-- Why: replicas may all run `migrate` at once; a session-level advisory lock with a fixed key lets one apply
-- while the others wait, then find nothing pending. The key is arbitrary but must never change.
SELECT pg_advisory_lock(7243615001);

-- name: unlock_migrations
-- Why: release the lock as soon as migrating ends, even on failure, rather than when the connection closes.
SELECT pg_advisory_unlock(7243615001);

-- name: create_schema_migrations
-- Why: the ledger of applied migrations; created on first use (under the lock) so a fresh database needs nothing.
-- applied_at is bookkeeping, not state, so it may take the database clock.
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       TEXT PRIMARY KEY,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- name: find_schema_migrations
-- Why: on a fresh database the ledger does not exist yet, and then every migration is pending.
SELECT to_regclass('schema_migrations') IS NOT NULL;

-- name: select_applied_migrations
-- Why: what was applied, and with which file contents, to find pending ones and refuse edited ones.
SELECT name, checksum FROM schema_migrations ORDER BY name;

-- name: record_migration
-- Why: written in the same transaction as the migration itself, so a migration is applied and recorded, or neither.
INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2);
