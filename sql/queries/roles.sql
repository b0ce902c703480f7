-- name: create_group_roles
-- Why: least privilege needs two group roles, made once per cluster by someone allowed to create roles (on a
-- managed PostgreSQL, its administrator): ocpp_writer for `ocpp-consumer run`, ocpp_reader for analysts. Nobody
-- logs in as a group (NOLOGIN); logins join one: CREATE ROLE … LOGIN PASSWORD '…' IN ROLE ocpp_writer.
-- Safe to run again: a role that exists is left as it is (and then no CREATEROLE privilege is needed).
DO $$
BEGIN
    IF to_regrole('ocpp_writer') IS NULL THEN
        CREATE ROLE ocpp_writer NOLOGIN;
    END IF;
    IF to_regrole('ocpp_reader') IS NULL THEN
        CREATE ROLE ocpp_reader NOLOGIN;
    END IF;
END
$$;

-- name: grant_group_roles
-- Why: what each group may do in this database, granted by the tables' owner. The writer reads and writes the
-- tables of the current schema (SELECT, INSERT, UPDATE: no DELETE, TRUNCATE or DDL, no other schema) and only
-- reads the migration ledger, which `run` checks; the reader only reads. Default privileges give the same to
-- tables that later migrations create. Migration 0004 applies these grants where the roles already exist; run
-- this again (`python -m consumer.roles --apply`) when the roles are made after it. A role that does not exist
-- is skipped.
DO $$
DECLARE
    table_name regclass;
BEGIN
    -- Only the owner can grant on the tables; anyone else would get warnings and grant nothing.
    IF EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
               AND c.relkind IN ('r', 'p') AND NOT pg_has_role(current_user, c.relowner, 'USAGE')) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('%s does not own the tables of schema %s: grant as their owner', current_user,
                             current_schema());
    END IF;
    IF to_regrole('ocpp_writer') IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO ocpp_writer', current_schema());
        FOR table_name IN
            SELECT c.oid::regclass FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
              AND c.relname <> 'schema_migrations'
        LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO ocpp_writer', table_name);
        END LOOP;
        IF to_regclass('schema_migrations') IS NOT NULL THEN
            GRANT SELECT ON schema_migrations TO ocpp_writer;
        END IF;
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE ON TABLES TO ocpp_writer',
                       current_schema());
    END IF;
    IF to_regrole('ocpp_reader') IS NOT NULL THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO ocpp_reader', current_schema());
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO ocpp_reader', current_schema());
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO ocpp_reader',
                       current_schema());
    END IF;
END
$$;

-- name: grant_partition_maker
-- Why: the writer makes status_history's monthly partitions through one function that runs as the owner
-- (migration 0005, ocpp_ensure_status_history_partitions); it may call that, and no other DDL. Migration 0005 ran
-- this block, word for word, where the roles existed.
DO $$
BEGIN
    IF to_regrole('ocpp_writer') IS NOT NULL
       AND to_regprocedure('ocpp_ensure_status_history_partitions(timestamptz[])') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION ocpp_ensure_status_history_partitions(timestamptz[]) TO ocpp_writer;
    END IF;
END
$$;
