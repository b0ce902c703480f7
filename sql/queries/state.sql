-- name: upsert_charge_points
-- Why: one round trip for all charge points of a batch; each value group moves only when the incoming version is
-- newer, so replays, reordering and concurrent replicas converge on the same row, and a replay writes no new tuple.
-- A version is (effective time, received_at, event_id, content digest), compared as a row (docs/tables.md).
-- $1 is a JSON array with one object per charge point (consumer/coalesce.py ChargePointRow), sorted by serial
-- number: the lock order.
-- An incoming NULL version (this batch had no boot / no connector-0 status) compares as NULL: CASE keeps the old
-- value. The comparison is repeated per column on purpose: a row-valued sub-select per row costs more on the hot
-- path than the repetition costs to read.
INSERT INTO charge_point AS cp (
    serial_number, model, vendor, firmware_version, boot_effective_at, boot_received_at, boot_event_id,
    boot_digest, status, status_effective_at, status_received_at, status_event_id, status_digest,
    last_heartbeat, last_updated
)
SELECT *
FROM json_to_recordset($1::json) AS r(
    serial_number text, model text, vendor text, firmware_version text, boot_effective_at timestamptz,
    boot_received_at timestamptz, boot_event_id uuid, boot_digest uuid, status text,
    status_effective_at timestamptz, status_received_at timestamptz, status_event_id uuid, status_digest uuid,
    last_heartbeat timestamptz, last_updated timestamptz
)
ON CONFLICT (serial_number) DO UPDATE SET
    model = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                      > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                         coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                 THEN excluded.model ELSE cp.model END,
    vendor = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                       > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                          coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                  THEN excluded.vendor ELSE cp.vendor END,
    firmware_version = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                                 > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                                    coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                            THEN excluded.firmware_version ELSE cp.firmware_version END,
    boot_effective_at = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                                  > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                                     coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                             THEN excluded.boot_effective_at ELSE cp.boot_effective_at END,
    boot_received_at = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                                 > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                                    coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                            THEN excluded.boot_received_at ELSE cp.boot_received_at END,
    boot_event_id = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                              > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                                 coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                         THEN excluded.boot_event_id ELSE cp.boot_event_id END,
    boot_digest = CASE WHEN (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
                            > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
                               coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
                       THEN excluded.boot_digest ELSE cp.boot_digest END,
    status = CASE WHEN (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
                       > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
                          coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
                  THEN excluded.status ELSE cp.status END,
    status_effective_at = CASE WHEN (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
                                    > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
                                       coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
                               THEN excluded.status_effective_at ELSE cp.status_effective_at END,
    status_received_at = CASE WHEN (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
                                   > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
                                      coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
                              THEN excluded.status_received_at ELSE cp.status_received_at END,
    status_event_id = CASE WHEN (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
                                > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
                                   coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
                           THEN excluded.status_event_id ELSE cp.status_event_id END,
    status_digest = CASE WHEN (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
                              > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
                                 coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
                         THEN excluded.status_digest ELSE cp.status_digest END,
    -- GREATEST ignores NULLs: a batch without heartbeats keeps the old value.
    last_heartbeat = greatest(cp.last_heartbeat, excluded.last_heartbeat),
    last_updated = greatest(cp.last_updated, excluded.last_updated)
WHERE (excluded.boot_effective_at, excluded.boot_received_at, excluded.boot_event_id, excluded.boot_digest)
          > (coalesce(cp.boot_effective_at, '-infinity'), coalesce(cp.boot_received_at, '-infinity'),
             coalesce(cp.boot_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.boot_digest, '00000000-0000-0000-0000-000000000000'))
   OR (excluded.status_effective_at, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
          > (coalesce(cp.status_effective_at, '-infinity'), coalesce(cp.status_received_at, '-infinity'),
             coalesce(cp.status_event_id, '00000000-0000-0000-0000-000000000000'), coalesce(cp.status_digest, '00000000-0000-0000-0000-000000000000'))
   OR excluded.last_heartbeat > coalesce(cp.last_heartbeat, '-infinity')
   OR excluded.last_updated > cp.last_updated;

-- name: upsert_connectors
-- Why: one round trip for all connectors of a batch; a row moves only to a newer version, (last_updated,
-- status_received_at, status_event_id, status_digest), so older or replayed statuses are no-ops. Runs after
-- upsert_charge_points, which created every parent row.
-- $1 is a JSON array with one object per connector (consumer/coalesce.py ConnectorRow), sorted by
-- (charge_point_id, connector_id): the lock order. id is a function of the key (md5 of
-- '<charge_point_id>/<connector_id>'), so the update never needs to set it.
INSERT INTO connector AS c (
    id, charge_point_id, connector_id, status, error_code, last_updated, status_received_at, status_event_id,
    status_digest
)
SELECT *
FROM json_to_recordset($1::json) AS r(
    id uuid, charge_point_id text, connector_id int, status text, error_code text, last_updated timestamptz,
    status_received_at timestamptz, status_event_id uuid, status_digest uuid
)
ON CONFLICT (charge_point_id, connector_id) DO UPDATE SET
    status = excluded.status,
    error_code = excluded.error_code,
    last_updated = excluded.last_updated,
    status_received_at = excluded.status_received_at,
    status_event_id = excluded.status_event_id,
    status_digest = excluded.status_digest
WHERE (excluded.last_updated, excluded.status_received_at, excluded.status_event_id, excluded.status_digest)
    > (c.last_updated, c.status_received_at, c.status_event_id, c.status_digest);
