-- name: select_port_uptime
-- Why: `ocpp-consumer report uptime`. The function computes (sql/migrations/0006_uptime_report.sql); the order is
-- the report's, stated here so that the output does not depend on how the function happens to return rows.
-- $1 from, $2 to, $3 as_of, $4 and $5 the slice of charge points (NULL: no bound; see select_report_slices).
SELECT charge_point_id, connector_id, observed_minutes, outage_minutes, excluded_minutes, uptime_percent, outages
FROM port_uptime($1, $2, $3, $4, $5)
ORDER BY charge_point_id COLLATE "C", connector_id;

-- name: select_port_outages
-- Why: `ocpp-consumer report outages`, ordered by charge point, port, start. $1 from, $2 to, $3 as_of, $4 and
-- $5 the slice of charge points, as select_port_uptime.
SELECT charge_point_id, connector_id, start, "end", minutes, excluded_minutes, cause, error_code,
       vendor_error_code
FROM port_outages($1, $2, $3, $4, $5)
ORDER BY charge_point_id COLLATE "C", connector_id, start;

-- name: select_report_slices
-- Why: `ocpp-consumer report --jobs N` computes the report in N slices at once, one per connection: the N - 1
-- charge point ids that cut the charge points into N slices of about as many each, in the report's order
-- (byte order). NULL when there are no charge points. Each slice is [one cut, the next) (migration 0008);
-- the first starts at NULL, the last ends at NULL, so together they are every charge point, known or not.
-- $1 N (>= 2).
SELECT percentile_disc(ARRAY(SELECT k::float8 / $1::int FROM generate_series(1, $1::int - 1) AS k))
       WITHIN GROUP (ORDER BY serial_number COLLATE "C")
FROM charge_point;

-- name: report_as_of
-- Why: `ocpp-consumer report` without --as-of: now, read once, so that every slice counts up to the same instant.
SELECT now();

-- name: insert_exclusion
-- Why: `ocpp-consumer exclusions add`; the new id is what `exclusions remove` takes.
-- $1 charge point, $2 port (NULL: the whole charge point), $3 start, $4 end, $5 reason code, $6 note.
INSERT INTO exclusions (charge_point_id, connector_id, starts_at, ends_at, reason_code, note)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id;

-- name: charge_point_known
-- Why: an exclusion for a charge point the database has never heard of is kept (it may come), but the operator
-- is told, since a typo would otherwise exclude nothing without a word. $1 the charge point.
SELECT EXISTS (SELECT FROM charge_point WHERE serial_number = $1);

-- name: select_exclusions
-- Why: `ocpp-consumer exclusions list`, by charge point, start, id.
SELECT id, charge_point_id, connector_id, starts_at, ends_at, reason_code, note, created_at
FROM exclusions
ORDER BY charge_point_id COLLATE "C", starts_at, id;

-- name: delete_exclusion
-- Why: `ocpp-consumer exclusions remove ID`; returns the id when there was such a row. $1 the id.
DELETE FROM exclusions WHERE id = $1 RETURNING id;

-- name: prune_status_history
-- Why: `ocpp-consumer history prune --before DATE`: drops the whole months before it (migration 0005's
-- function, which the owner alone may run) and lists the partitions dropped. $1 the date as a UTC time.
SELECT dropped FROM ocpp_prune_status_history($1) ORDER BY dropped;
