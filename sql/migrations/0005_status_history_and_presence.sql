-- Time, not only the present (docs/tables.md, "History and presence"): every status event kept, append-only, in
-- monthly partitions; each charge point's presence as a union of time ranges; and charge_point.last_seen_at.
-- Both are functions of the set of events, like the state tables: a replay, a duplicate or a second replica adds
-- nothing, and any order gives the same rows.

ALTER TABLE charge_point ADD COLUMN last_seen_at TIMESTAMPTZ;
-- What is known of it at upgrade: the greatest received_at of the events the row still records.
UPDATE charge_point SET last_seen_at = nullif(greatest(
    coalesce(boot_received_at, '-infinity'), coalesce(status_received_at, '-infinity'),
    coalesce(last_heartbeat, '-infinity')), '-infinity');
COMMENT ON COLUMN charge_point.last_seen_at IS
    'Greatest received_at of any valid event of the charge point, tracked action or not. Rows from before migration 0005: the greatest received_at they recorded (boot, status, heartbeat); NULL when none.';

-- One row per status event: each physical connector's, each 1.6 port's and each charge point's own.
-- Identity is the event and what it is about: (charge_point_id, connector_id, evse_connector_id, effective_at,
-- event_id). A NotifyEvent reports several statuses under one event_id, never two for one connector and instant.
-- Two records that share an event_id and a key (a gateway's bug) keep the one with the greater (received_at,
-- digest), the version order's rule, so the table stays a function of the set of events.
CREATE TABLE status_history (
    charge_point_id   VARCHAR(255) NOT NULL,
    connector_id      INT NOT NULL CHECK (connector_id >= 0),
    evse_connector_id INT CHECK (evse_connector_id >= 0),
    effective_at      TIMESTAMPTZ NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL,
    event_id          UUID NOT NULL,
    ocpp_version      VARCHAR(8),
    source_action     VARCHAR(32),
    status            VARCHAR(255) NOT NULL,
    error_code        VARCHAR(255),
    error_info        VARCHAR(255),
    vendor_id         VARCHAR(255),
    vendor_error_code VARCHAR(255),
    -- The last tie-break of the version order, as the state tables compute it for the same group: a 1.6 port's
    -- five values, otherwise the status alone. Computed here, not by the writer: it is needed only for ties.
    -- ocpp_content_digest written out: the function call cost ~8 µs a row on insert, the expression ~1 µs.
    digest            UUID NOT NULL GENERATED ALWAYS AS (md5(
        coalesce(length(status)::text || ':' || status, 'null')
        || CASE WHEN connector_id > 0 AND evse_connector_id IS NULL
                THEN coalesce(length(error_code)::text || ':' || error_code, 'null')
                     || coalesce(length(error_info)::text || ':' || error_info, 'null')
                     || coalesce(length(vendor_id)::text || ':' || vendor_id, 'null')
                     || coalesce(length(vendor_error_code)::text || ':' || vendor_error_code, 'null')
                ELSE '' END)::uuid) STORED,
    CONSTRAINT status_history_key UNIQUE NULLS NOT DISTINCT
        (charge_point_id, connector_id, evse_connector_id, effective_at, event_id)
) PARTITION BY RANGE (effective_at);

-- Months before this have been pruned (ocpp_prune_status_history): their partitions are gone and later events of
-- them are not added to history (they still update the state, and are counted).
CREATE TABLE status_history_retention (
    singleton     BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_before TIMESTAMPTZ NOT NULL
);

-- The month partitions an event needs, made on demand: effective times can be years off, so no fixed range of
-- months would do. Runs as the tables' owner (SECURITY DEFINER), so the writer needs no DDL right, only EXECUTE.
-- A partition is made as a table of its own and then attached, which locks the parent far less than CREATE TABLE
-- … PARTITION OF (SHARE UPDATE EXCLUSIVE: writers go on); taking that lock first makes concurrent replicas take
-- turns, and a lock on the table (unlike an advisory lock) also makes the check after it see the other's partition.
-- Called outside the write transaction (consumer/store.py), so it never waits while holding row locks.
CREATE FUNCTION ocpp_ensure_status_history_partitions(effective_times timestamptz[]) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    month timestamptz;
    horizon timestamptz := (SELECT pruned_before FROM status_history_retention);
    partition_name text;
    made int := 0;
BEGIN
    FOR month IN
        SELECT DISTINCT date_trunc('month', t, 'UTC') FROM unnest(effective_times) AS t
        WHERE t IS NOT NULL AND isfinite(t) ORDER BY 1
    LOOP
        CONTINUE WHEN month < horizon;
        partition_name := 'status_history_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(quote_ident(partition_name)) IS NOT NULL;
        LOCK TABLE status_history IN SHARE UPDATE EXCLUSIVE MODE;
        CONTINUE WHEN to_regclass(quote_ident(partition_name)) IS NOT NULL;  -- made while we waited
        EXECUTE format('CREATE TABLE %I (LIKE status_history INCLUDING DEFAULTS INCLUDING GENERATED '
                       'INCLUDING CONSTRAINTS)', partition_name);
        EXECUTE format('ALTER TABLE status_history ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       partition_name, month, (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION ocpp_ensure_status_history_partitions(timestamptz[]) IS
    'Makes the monthly status_history partitions (UTC months, status_history_YYYY_MM) these effective times fall in, except pruned months; returns how many it made. The writer calls it before each batch.';

-- Retention: drops every month that ends on or before `before` and remembers the horizon, so a late event of a
-- dropped month does not bring the month back. Whole months only: a month that `before` cuts is kept. What was in
-- force at the horizon is not forgotten: each series' winning row before it (a 1.6 port's, a 2.x connector's, a
-- charge point's own status) is carried into status_history_before_horizon, the table's DEFAULT partition, so a
-- port that reported nothing since still has its status, and exists, in a later period's report. Later prunes
-- replace those rows with the winners at the new horizon. No month partition is ever made before the horizon, so
-- the default partition never holds a row that a new month's partition would need.
CREATE FUNCTION ocpp_prune_status_history(before timestamptz) RETURNS TABLE (dropped text)
LANGUAGE plpgsql AS $$
DECLARE
    horizon timestamptz := date_trunc('month', before, 'UTC');
    part record;
    upper_bound timestamptz;
BEGIN
    IF before > now() THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('cannot prune status history before %s: it is in the future, and would drop the '
                             'months being written', before);
    END IF;
    LOCK TABLE status_history IN ACCESS EXCLUSIVE MODE;  -- what dropping a partition takes anyway, up front
    -- An earlier prune may have gone further: what it carried stays the truth at its horizon.
    horizon := greatest(horizon, (SELECT pruned_before FROM status_history_retention));
    DROP TABLE IF EXISTS pg_temp.carried;
    CREATE TEMPORARY TABLE carried ON COMMIT DROP AS
    SELECT DISTINCT ON (charge_point_id, connector_id, evse_connector_id)
           charge_point_id, connector_id, evse_connector_id, effective_at, received_at, event_id, ocpp_version,
           source_action, status, error_code, error_info, vendor_id, vendor_error_code
    FROM status_history
    WHERE effective_at < horizon
    ORDER BY charge_point_id, connector_id, evse_connector_id, effective_at DESC, received_at DESC, event_id DESC,
             digest DESC;
    FOR part IN
        SELECT i.inhrelid::regclass::text AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'status_history'::regclass
    LOOP
        CONTINUE WHEN part.bound = 'DEFAULT';
        upper_bound := substring(part.bound FROM $re$TO \('([^']+)'\)$re$)::timestamptz;
        IF upper_bound <= before THEN
            EXECUTE format('DROP TABLE %s', part.name);
            dropped := part.name;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF to_regclass('status_history_before_horizon') IS NULL THEN
        CREATE TABLE status_history_before_horizon PARTITION OF status_history DEFAULT;
    END IF;
    DELETE FROM status_history_before_horizon;
    INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at,
                                event_id, ocpp_version, source_action, status, error_code, error_info, vendor_id,
                                vendor_error_code)
    SELECT * FROM carried;
    INSERT INTO status_history_retention AS r (pruned_before) VALUES (horizon)
    ON CONFLICT (singleton) DO UPDATE SET pruned_before = greatest(r.pruned_before, excluded.pruned_before);
END
$$;
COMMENT ON FUNCTION ocpp_prune_status_history(timestamptz) IS
    'Drops the status_history months that end on or before the given time (whole months), keeps later events of them out, and keeps each series'' row in force at the horizon (status_history_before_horizon); run as the owner (ocpp-consumer history prune --before DATE). Returns the partitions dropped.';

-- Presence: a charge point was connected for OCPP_PRESENCE_WINDOW_SECONDS after each valid event it sent. One row
-- per charge point and UTC day, holding that day's part of the union; union is commutative, associative and
-- idempotent, so any order, replay or replica gives the same rows.
CREATE TABLE charge_point_presence (
    charge_point_id VARCHAR(255) NOT NULL,  -- no foreign key, as in status_history: written with its charge point
    day             DATE NOT NULL,
    present         TSTZMULTIRANGE NOT NULL,
    PRIMARY KEY (charge_point_id, day),
    CONSTRAINT charge_point_presence_within_day CHECK (
        present <@ tstzmultirange(tstzrange(day::timestamp AT TIME ZONE 'UTC',
                                            (day + 1)::timestamp AT TIME ZONE 'UTC')))
) WITH (fillfactor = 70);

-- The history the state tables already hold: each current status, with the identity of the event that set it,
-- so the report knows every port from the upgrade on, and a replay of that event later matches its row.
-- ocpp_version and source_action are unknown for these rows (NULL).
CREATE TEMPORARY TABLE seed_status_history AS
SELECT serial_number AS charge_point_id, 0 AS connector_id, NULL::int AS evse_connector_id,
       status_effective_at AS effective_at, status_received_at AS received_at, status_event_id AS event_id,
       status, NULL::text AS error_code, NULL::text AS error_info, NULL::text AS vendor_id,
       NULL::text AS vendor_error_code
FROM charge_point WHERE status IS NOT NULL
UNION ALL
SELECT charge_point_id, connector_id, NULL, ocpp16_effective_at, ocpp16_received_at, ocpp16_event_id,
       ocpp16_status, ocpp16_error_code, ocpp16_error_info, ocpp16_vendor_id, ocpp16_vendor_error_code
FROM connector WHERE ocpp16_status IS NOT NULL
UNION ALL
-- Rows from before migration 0003 recorded no family: their shown state is the port's.
SELECT charge_point_id, connector_id, NULL, last_updated, status_received_at, status_event_id, status, error_code,
       error_info, vendor_id, vendor_error_code
FROM connector WHERE status_family IS NULL AND ocpp16_status IS NULL
UNION ALL
SELECT charge_point_id, evse_id, connector_id, last_updated, status_received_at, status_event_id, status, NULL,
       NULL, NULL, NULL
FROM evse_connector;

SELECT ocpp_ensure_status_history_partitions(array_agg(effective_at)) FROM seed_status_history;
INSERT INTO status_history (charge_point_id, connector_id, evse_connector_id, effective_at, received_at, event_id,
                            status, error_code, error_info, vendor_id, vendor_error_code)
SELECT * FROM seed_status_history WHERE isfinite(effective_at);
DROP TABLE seed_status_history;

-- The writer may make partitions, not other DDL; nobody else needs to.
REVOKE EXECUTE ON FUNCTION ocpp_ensure_status_history_partitions(timestamptz[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ocpp_prune_status_history(timestamptz) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('ocpp_writer') IS NOT NULL
       AND to_regprocedure('ocpp_ensure_status_history_partitions(timestamptz[])') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION ocpp_ensure_status_history_partitions(timestamptz[]) TO ocpp_writer;
    END IF;
END
$$;

COMMENT ON TABLE status_history IS
    'Every status event, append-only: each 1.6 port''s, each 2.x physical connector''s and each charge point''s own (connector_id 0). Partitioned by UTC month of effective_at; see docs/tables.md, "History and presence".';
COMMENT ON COLUMN status_history.charge_point_id IS 'charge_point.serial_number of its charge point.';
COMMENT ON COLUMN status_history.connector_id IS
    'The port (connector.connector_id: 1.6 connectorId, 2.x evseId); 0: the charge point itself (1.6 connector 0, 2.x EVSE 0, NotifyEvent ChargingStation).';
COMMENT ON COLUMN status_history.evse_connector_id IS
    'OCPP 2.x: the physical connector within the EVSE (connectorId). NULL: a 1.6 port, or the charge point itself without one.';
COMMENT ON COLUMN status_history.effective_at IS
    'Since when the status holds (the charger''s timestamp under the time rules, docs/contract.md). First in the version order; the partition key.';
COMMENT ON COLUMN status_history.received_at IS
    'When the gateway received the event (bounded as in docs/contract.md). Second in the version order.';
COMMENT ON COLUMN status_history.event_id IS 'The event''s id (envelope event_id). Third in the version order.';
COMMENT ON COLUMN status_history.ocpp_version IS
    'OCPP version of the event: 1.6, 2.0.1 or 2.1. NULL: seeded by migration 0005 from the state at upgrade.';
COMMENT ON COLUMN status_history.source_action IS
    'The OCPP action that reported it: StatusNotification or NotifyEvent. NULL: seeded by migration 0005.';
COMMENT ON COLUMN status_history.status IS 'The status, UPPER_SNAKE_CASE, as in connector.status.';
COMMENT ON COLUMN status_history.error_code IS '1.6 errorCode, UPPER_SNAKE_CASE; NULL for NoError and for 2.x.';
COMMENT ON COLUMN status_history.error_info IS '1.6 info. NULL: not reported, or 2.x.';
COMMENT ON COLUMN status_history.vendor_id IS '1.6 vendorId. NULL: not reported, or 2.x.';
COMMENT ON COLUMN status_history.vendor_error_code IS '1.6 vendorErrorCode. NULL: not reported, or 2.x.';
COMMENT ON COLUMN status_history.digest IS
    'ocpp_content_digest (written out) of the values (a 1.6 port: status, error_code, error_info, vendor_id, vendor_error_code; otherwise status): the last tie-break of the version order.';
COMMENT ON TABLE status_history_retention IS
    'The history''s horizon: months before pruned_before were dropped by ocpp_prune_status_history. No row: nothing pruned.';
COMMENT ON TABLE charge_point_presence IS
    'When each charge point was connected: every valid event marks [received_at, received_at + OCPP_PRESENCE_WINDOW_SECONDS) present. One row per charge point and UTC day with that day''s part of the union.';
COMMENT ON COLUMN charge_point_presence.day IS 'The UTC day; present lies within it.';
COMMENT ON COLUMN charge_point_presence.present IS 'The union of the presence ranges within the day.';
