-- The version order, stated once: last writer wins by (effective time, received_at, event_id, content digest).
--
-- OCPP 1.6 chargers often stamp whole seconds, so a connector going Preparing → Charging within one second gives
-- two events with the same effective time; the event_id (random) used to decide, and the older status won half
-- the time. The gateway's receipt order (received_at) now decides between events a charger stamped with the
-- same instant; the event_id, then a digest of the written values, decide only true ties, so that even two
-- different events carrying one event_id give the same state in any order.
--
-- Rows written before this migration carry received_at '-infinity' (unknown: the lowest possible) and the digest
-- of their values, so every existing version stays valid and comparable; a replay of the same event only
-- fills in the real received_at.

-- md5 of the values, each written as '<length>:<value>' ('null' for NULL) and concatenated, read as a UUID:
-- unambiguous (a length prefix cannot be confused with a value), and the same in Python (consumer/coalesce.py).
CREATE FUNCTION ocpp_content_digest(VARIADIC parts text[]) RETURNS uuid
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT md5(string_agg(coalesce(length(p)::text || ':' || p, 'null'), '' ORDER BY i))::uuid
    FROM unnest(parts) WITH ORDINALITY AS u(p, i)
$$;
COMMENT ON FUNCTION ocpp_content_digest(text[]) IS
    'Digest of a value group, the last tie-break of the version order (docs/tables.md, "Versions").';

ALTER TABLE charge_point
    ADD COLUMN boot_received_at   TIMESTAMPTZ,
    ADD COLUMN boot_digest        UUID,
    ADD COLUMN status_received_at TIMESTAMPTZ,
    ADD COLUMN status_digest      UUID;

UPDATE charge_point SET
    boot_received_at = '-infinity',
    boot_digest = ocpp_content_digest(vendor, model, firmware_version)
WHERE boot_effective_at IS NOT NULL;
UPDATE charge_point SET
    status_received_at = '-infinity',
    status_digest = ocpp_content_digest(status)
WHERE status_effective_at IS NOT NULL;

ALTER TABLE charge_point
    DROP CONSTRAINT charge_point_boot_version_whole,
    DROP CONSTRAINT charge_point_status_version_whole,
    ADD CONSTRAINT charge_point_boot_version_whole CHECK (
        num_nulls(boot_effective_at, boot_received_at, boot_event_id, boot_digest) IN (0, 4)),
    ADD CONSTRAINT charge_point_status_version_whole CHECK (
        num_nulls(status_effective_at, status_received_at, status_event_id, status_digest) IN (0, 4));

ALTER TABLE connector
    ADD COLUMN status_received_at TIMESTAMPTZ,
    ADD COLUMN status_digest      UUID;
UPDATE connector SET status_received_at = '-infinity', status_digest = ocpp_content_digest(status, error_code);
ALTER TABLE connector
    ALTER COLUMN status_received_at SET NOT NULL,
    ALTER COLUMN status_digest SET NOT NULL;

COMMENT ON COLUMN charge_point.boot_received_at IS
    'received_at (gateway clock, UTC) of the winning BootNotification: second in its version. -infinity: written before migration 0002.';
COMMENT ON COLUMN charge_point.boot_digest IS
    'ocpp_content_digest(vendor, model, firmware_version) of the winning BootNotification: the last tie-break.';
COMMENT ON COLUMN charge_point.boot_event_id IS
    'event_id of the winning BootNotification: third in its version.';
COMMENT ON COLUMN charge_point.status_received_at IS
    'received_at of the winning connector-0 StatusNotification: second in its version. -infinity: written before migration 0002.';
COMMENT ON COLUMN charge_point.status_digest IS
    'ocpp_content_digest(status) of the winning connector-0 StatusNotification: the last tie-break.';
COMMENT ON COLUMN charge_point.status_event_id IS
    'event_id of the winning connector-0 StatusNotification: third in its version.';
COMMENT ON COLUMN connector.status_received_at IS
    'received_at of the winning StatusNotification: second in its version, after last_updated. -infinity: written before migration 0002.';
COMMENT ON COLUMN connector.status_digest IS
    'ocpp_content_digest(status, error_code) of the winning StatusNotification: the last tie-break.';
COMMENT ON COLUMN connector.status_event_id IS
    'event_id of the winning StatusNotification: third in its version, after last_updated and status_received_at.';
COMMENT ON TABLE charge_point IS
    'One row per charge point that ever sent a valid event; state as the events say, last writer wins by (effective time, received_at, event_id, content digest) per value group. See docs/tables.md.';
COMMENT ON TABLE connector IS
    'One row per (charge point, connector > 0) that ever sent a StatusNotification; last writer wins by (last_updated, status_received_at, status_event_id, status_digest).';
