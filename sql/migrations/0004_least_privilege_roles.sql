-- Least privilege: the group roles get what they need in this database, granted by the owner that migrates.
-- ocpp_writer (what `ocpp-consumer run` connects as a member of) reads and writes the tables: SELECT, INSERT,
-- UPDATE, never DELETE, TRUNCATE or DDL, nothing in another schema; it only reads the ledger schema_migrations,
-- which `run` checks for pending migrations. ocpp_reader (analysts) only reads. Default privileges give the same
-- on tables that later migrations create.
--
-- The roles are cluster-wide and made once by an administrator (docs/security.md: `python -m consumer.roles`);
-- where they do not exist yet, this grants nothing and the service goes on running as the tables' owner. Made
-- later, the same grants are applied by `python -m consumer.roles --apply` (sql/queries/roles.sql,
-- grant_group_roles: the block below, word for word).
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
