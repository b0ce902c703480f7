-- The status in force at the period's start is looked for in the recent months first, and an outage ongoing at
-- the start is read back only as far as it reaches: the report's cost no longer grows with the months of history
-- kept (BENCHMARKS.md, "The in-force probe reads the recent months").
--
-- Migration 0008 found a 1.6 port's status in force at a moment in two steps by the key index, reading one index
-- entry per month's partition at or before the moment: a Merge Append over all of them, since the planner cannot
-- stop at the first month that has a row (the query's order starts with evse_connector_id, not the partition
-- key). A charge point's own status (connector 0) sorted all its rows before the moment. With a year of history
-- that is thirteen index descents per 1.6 port and the own rows of a year per charge point, every report.
--
-- Now every in-force lookup (a 1.6 port's, a 2.x connector's, the charge point's own, and port_outages' fault
-- details at an outage's start) takes the newest effective time in the moment's month and the one before it
-- first (from ocpp_month_before: two partitions, pruned by the planner), then the version order's winner at that
-- time. Only a series with no row there is looked for in the older months, and not at all when the history has
-- no rows that old (checked once per call: a fleet that started in the period stays within a few per cent), or
-- for a port's 1.6 series when the port has a 2.x row in those two months (that row supersedes any older 1.6
-- one: so a 2.x port's absent 1.6 series is not looked for in every month kept). A charge point whose state has
-- no own status has no connector-0 rows, and is not looked up. A series with no status in the last month (an
-- idle port) costs what it did; a port that changes status at least monthly reads two months, however many
-- are kept.
--
-- port_outages found when an outage ongoing at the period's start began by reading the whole history of those
-- charge points (a timeline from '-infinity'): after a day without presence across the start, every port of the
-- fleet, every month kept. ocpp_outage_starts reads back a day, a week, a month, a quarter, a year, then all,
-- each step for the charge points still down at its start only.
--
-- The bodies are 0008's, restated whole (a SQL function cannot be patched in part); their signatures and
-- comments stay, so callers and grants are untouched. The changes: the in-force lookups of rows_16, rows_2x and
-- rows_own, the own series listed only for charge points with an own status, port_outages' fault-details lookup,
-- and its look-back before the period (ocpp_outage_starts).

CREATE FUNCTION ocpp_month_before(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (date_trunc('month', t AT TIME ZONE 'UTC') - interval '1 month') AT TIME ZONE 'UTC'
$$;
COMMENT ON FUNCTION ocpp_month_before(timestamptz) IS
    'The start of the UTC month before the one t falls in: the oldest partition the report reads first for the status in force at t.';

CREATE OR REPLACE FUNCTION ocpp_port_timeline(lo timestamptz, hi timestamptz, charge_points text[] DEFAULT NULL,
                                   charge_point_from text DEFAULT NULL, charge_point_to text DEFAULT NULL)
RETURNS TABLE (
    charge_point_id VARCHAR(255),
    connector_id    INT,
    exists_from     TIMESTAMPTZ,    -- the port's first instant in [lo, hi): lo, or its first status event
    first_presence  TIMESTAMPTZ,    -- when its charge point was first present, if before hi (any time < lo: earlier)
    down            TSTZMULTIRANGE, -- faulted + unavailable + offline
    faulted         TSTZMULTIRANGE, -- its status, or its charge point's own, is FAULTED
    unavailable     TSTZMULTIRANGE, -- its status, or its charge point's own, is UNAVAILABLE
    offline         TSTZMULTIRANGE, -- its charge point is not present
    shows_16        TSTZMULTIRANGE  -- it shows OCPP 1.6 (its newest status event is a 1.6 one)
)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
WITH
-- The series are listed from the state tables, which have a row for every key an event ever wrote (nothing is
-- deleted), so each series below is read by its own index probes rather than by scanning the history.
listed_charge_points AS (
    SELECT serial_number AS charge_point_id, status_effective_at IS NOT NULL AS has_own_status FROM charge_point
    WHERE (charge_points IS NULL OR serial_number = ANY (charge_points))
      AND ocpp_in_slice(serial_number, charge_point_from, charge_point_to)
),
ports AS (
    SELECT c.charge_point_id, c.connector_id FROM connector AS c
    WHERE (charge_points IS NULL OR c.charge_point_id = ANY (charge_points))
      AND ocpp_in_slice(c.charge_point_id, charge_point_from, charge_point_to)
),
physical_connectors AS (
    SELECT ec.charge_point_id, ec.evse_id, ec.connector_id FROM evse_connector AS ec
    WHERE (charge_points IS NULL OR ec.charge_point_id = ANY (charge_points))
      AND ocpp_in_slice(ec.charge_point_id, charge_point_from, charge_point_to)
),
-- Whether the history has rows older than the month before lo's: if not, a series with none since is not
-- looked for further back (below). Read once per call: the oldest month's first row.
older_months AS (
    SELECT EXISTS (SELECT FROM status_history AS o WHERE o.effective_at < ocpp_month_before(lo)) AS have_rows
),
-- The rows that decide a series over [lo, hi): the one in force at lo (the greatest version with effective_at
-- <= lo) and every row after lo and before hi. A 1.6 port's series: its rows without a physical connector.
-- Its in-force row is found in two steps, each read from the key index (charge_point_id, connector_id,
-- evse_connector_id, effective_at, event_id): the newest effective time at or before lo, ordered by
-- evse_connector_id first (NULL in every row read) because that is the index's order, so a month's partition
-- is read backwards from lo and stops at once; then the rows at that time, the winner by the version order.
-- The newest time is looked for in lo's month and the one before it first (two partitions), and in the older
-- months only if those have none, the history has older rows at all (one check per call), and the port has no
-- 2.x row in those two months (which would supersede any older 1.6 row: so a 2.x port's absent 1.6 series is
-- not looked for in every month kept).
rows_16 AS (
    SELECT p.charge_point_id, p.connector_id, r.*
    FROM ports AS p
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = p.charge_point_id AND h.connector_id = p.connector_id
           AND h.evse_connector_id IS NULL
           AND h.effective_at = coalesce(
               (SELECT n.effective_at FROM status_history AS n
                WHERE n.charge_point_id = p.charge_point_id AND n.connector_id = p.connector_id
                  AND n.evse_connector_id IS NULL AND n.effective_at <= lo AND n.effective_at >= ocpp_month_before(lo)
                ORDER BY n.evse_connector_id DESC, n.effective_at DESC
                LIMIT 1),
               CASE WHEN (SELECT have_rows FROM older_months)
                     AND NOT EXISTS (SELECT FROM status_history AS x
                                     WHERE x.charge_point_id = p.charge_point_id AND x.connector_id = p.connector_id
                                       AND x.evse_connector_id IS NOT NULL
                                       AND x.effective_at <= lo AND x.effective_at >= ocpp_month_before(lo)) THEN
               (SELECT n.effective_at FROM status_history AS n
                WHERE n.charge_point_id = p.charge_point_id AND n.connector_id = p.connector_id
                  AND n.evse_connector_id IS NULL AND n.effective_at < ocpp_month_before(lo)
                ORDER BY n.evse_connector_id DESC, n.effective_at DESC
                LIMIT 1) END)
         ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = p.charge_point_id AND h.connector_id = p.connector_id
          AND h.evse_connector_id IS NULL AND h.effective_at > lo AND h.effective_at < hi
    ) AS r
),
-- Each physical connector of a 2.x EVSE (the port connector_id = evseId) is a series of its own. Its rows are
-- in time order in the key index; its in-force row is still found in two steps, the recent months first, since
-- the version order's tie-break would otherwise read one row past the newest, often in an older month.
rows_2x AS (
    SELECT pc.charge_point_id, pc.evse_id AS connector_id, pc.connector_id AS evse_connector_id, r.*
    FROM physical_connectors AS pc
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = pc.charge_point_id AND h.connector_id = pc.evse_id
           AND h.evse_connector_id = pc.connector_id
           AND h.effective_at = coalesce(
               (SELECT max(n.effective_at) FROM status_history AS n
                WHERE n.charge_point_id = pc.charge_point_id AND n.connector_id = pc.evse_id
                  AND n.evse_connector_id = pc.connector_id
                  AND n.effective_at <= lo AND n.effective_at >= ocpp_month_before(lo)),
               CASE WHEN (SELECT have_rows FROM older_months) THEN
               (SELECT max(n.effective_at) FROM status_history AS n
                WHERE n.charge_point_id = pc.charge_point_id AND n.connector_id = pc.evse_id
                  AND n.evse_connector_id = pc.connector_id AND n.effective_at < ocpp_month_before(lo)) END)
         ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = pc.charge_point_id AND h.connector_id = pc.evse_id
          AND h.evse_connector_id = pc.connector_id AND h.effective_at > lo AND h.effective_at < hi
    ) AS r
),
-- The charge point's own status: every row with connector_id 0, whichever family or action reported it (one
-- value group in the state tables too: a charge point whose state has no own status has no such rows, and is
-- not read). Its rows may carry any evse_connector_id, so the index does not give them in time order: the
-- newest effective time at or before lo is taken from lo's month and the one before it, and from the older
-- months only if those have none, as for a 1.6 port; then the winner at that time.
rows_own AS (
    SELECT cp.charge_point_id, r.*
    FROM listed_charge_points AS cp
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = cp.charge_point_id AND h.connector_id = 0
           AND h.effective_at = coalesce(
               (SELECT max(n.effective_at) FROM status_history AS n
                WHERE n.charge_point_id = cp.charge_point_id AND n.connector_id = 0
                  AND n.effective_at <= lo AND n.effective_at >= ocpp_month_before(lo)),
               CASE WHEN (SELECT have_rows FROM older_months) THEN
               (SELECT max(n.effective_at) FROM status_history AS n
                WHERE n.charge_point_id = cp.charge_point_id AND n.connector_id = 0
                  AND n.effective_at < ocpp_month_before(lo)) END)
         ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = cp.charge_point_id AND h.connector_id = 0 AND h.effective_at > lo
          AND h.effective_at < hi
    ) AS r
    WHERE cp.has_own_status
),
-- A row holds from its effective time until the next row of its series in the version order (or hi): rows that
-- share an effective time hold for an empty range, except the winner. Clipped to [lo, hi): the row in force at
-- lo began earlier.
--
-- At the port level both families are one series: where its newest row is a 1.6 row the port shows 1.6 and that
-- row's status (it is the winning 1.6 row); where it is a 2.x row the port shows 2.x, whose status comes from its
-- physical connectors (below). The union of its segments is the port's existence: from its first status event.
port_segments AS (
    SELECT charge_point_id, connector_id, is_16, status,
           tstzrange(effective_at, lead(effective_at, 1, hi) OVER version_order) * tstzrange(lo, hi) AS during
    FROM (SELECT charge_point_id, connector_id, true AS is_16, status, effective_at, received_at, event_id, digest
          FROM rows_16
          UNION ALL
          SELECT charge_point_id, connector_id, false, status, effective_at, received_at, event_id, digest
          FROM rows_2x) AS r
    WINDOW version_order AS (PARTITION BY charge_point_id, connector_id
                             ORDER BY effective_at, received_at, event_id, digest)
),
physical_segments AS (
    SELECT charge_point_id, connector_id, status,
           tstzrange(effective_at, lead(effective_at, 1, hi) OVER version_order) * tstzrange(lo, hi) AS during
    FROM rows_2x
    WINDOW version_order AS (PARTITION BY charge_point_id, connector_id, evse_connector_id
                             ORDER BY effective_at, received_at, event_id, digest)
),
own_segments AS (
    SELECT charge_point_id, status,
           tstzrange(effective_at, lead(effective_at, 1, hi) OVER version_order) * tstzrange(lo, hi) AS during
    FROM rows_own
    WINDOW version_order AS (PARTITION BY charge_point_id ORDER BY effective_at, received_at, event_id, digest)
),
port_shown AS (
    SELECT charge_point_id, connector_id,
           range_agg(during) AS existence,
           coalesce(range_agg(during) FILTER (WHERE is_16), '{}') AS shows_16,
           coalesce(range_agg(during) FILTER (WHERE is_16 AND status = 'FAULTED'), '{}') AS faulted_16,
           coalesce(range_agg(during) FILTER (WHERE is_16 AND status = 'UNAVAILABLE'), '{}') AS unavailable_16,
           coalesce(range_agg(during) FILTER (WHERE NOT is_16), '{}') AS shows_2x
    FROM port_segments
    GROUP BY charge_point_id, connector_id
),
-- A 2.x port's status at t is the highest of its connectors' statuses existing at t (ocpp_port_status_rank): it
-- is FAULTED where a connector is FAULTED and none ranks higher, UNAVAILABLE where one is UNAVAILABLE and none
-- ranks higher.
port_2x AS (
    SELECT charge_point_id, connector_id,
           coalesce(range_agg(during) FILTER (WHERE ocpp_port_status_rank(status) > 2), '{}') AS above_faulted,
           coalesce(range_agg(during) FILTER (WHERE status = 'FAULTED'), '{}') AS any_faulted,
           coalesce(range_agg(during) FILTER (WHERE status = 'UNAVAILABLE'), '{}') AS any_unavailable
    FROM physical_segments
    GROUP BY charge_point_id, connector_id
),
own_status AS (
    SELECT charge_point_id,
           coalesce(range_agg(during) FILTER (WHERE status = 'FAULTED'), '{}') AS faulted,
           coalesce(range_agg(during) FILTER (WHERE status = 'UNAVAILABLE'), '{}') AS unavailable
    FROM own_segments
    GROUP BY charge_point_id
),
-- Presence: the days [lo, hi) touches, and the nearest earlier day, which says whether the charge point was
-- present before lo (its first presence) without reading its whole past.
presence AS (
    SELECT cp.charge_point_id, range_agg(d.present) AS present, min(lower(d.present)) AS first_presence
    FROM listed_charge_points AS cp
    CROSS JOIN LATERAL (
        (SELECT pr.present FROM charge_point_presence AS pr
         WHERE pr.charge_point_id = cp.charge_point_id AND pr.day < (lo AT TIME ZONE 'UTC')::date
         ORDER BY pr.day DESC
         LIMIT 1)
        UNION ALL
        SELECT pr.present FROM charge_point_presence AS pr
        WHERE pr.charge_point_id = cp.charge_point_id
          AND pr.day BETWEEN (lo AT TIME ZONE 'UTC')::date AND (hi AT TIME ZONE 'UTC')::date
    ) AS d
    GROUP BY cp.charge_point_id
),
port_states AS (
    SELECT s.charge_point_id, s.connector_id, s.existence, s.shows_16, pr.first_presence,
           s.existence * (s.faulted_16 + s.shows_2x * (coalesce(x.any_faulted, '{}') - coalesce(x.above_faulted, '{}'))
                          + coalesce(o.faulted, '{}')) AS faulted,
           s.existence * (s.unavailable_16
                          + s.shows_2x * (coalesce(x.any_unavailable, '{}') - coalesce(x.above_faulted, '{}')
                                          - coalesce(x.any_faulted, '{}'))
                          + coalesce(o.unavailable, '{}')) AS unavailable,
           s.existence - coalesce(pr.present, '{}') AS offline
    FROM port_shown AS s
    LEFT JOIN port_2x AS x USING (charge_point_id, connector_id)
    LEFT JOIN own_status AS o USING (charge_point_id)
    LEFT JOIN presence AS pr USING (charge_point_id)
    WHERE NOT isempty(s.existence)
)
SELECT charge_point_id, connector_id, lower(existence), first_presence, faulted + unavailable + offline, faulted,
       unavailable, offline, shows_16
FROM port_states
$$;

-- When the down span of each port of these charge points that is down at `at` began, with what applied then (for
-- port_outages: the span's own start, cause and fault details). The timeline is read back a day before `at`,
-- then a week, a month, a quarter, a year and all of it, each step only for the charge points with a span that
-- reaches back past the step before: what is read grows with how long the outage has lasted, not with the
-- history kept. Within its window a timeline is exact (docs/tables.md, "Port status over time"), so a span that
-- starts after the window's start starts there in the whole history too. A port may come back from several
-- steps, with the same answer; the caller keeps one.
CREATE FUNCTION ocpp_outage_starts(charge_points text[], "at" timestamptz)
RETURNS TABLE (
    charge_point_id VARCHAR(255),
    connector_id    INT,
    began           TIMESTAMPTZ,
    faulted         TSTZMULTIRANGE,
    unavailable     TSTZMULTIRANGE,
    shows_16        TSTZMULTIRANGE
)
LANGUAGE plpgsql STABLE SET jit = off SET enable_memoize = off AS $$  -- as port_uptime
DECLARE
    back interval;
    lo timestamptz;
    pending text[] := charge_points;
    cut text[];
    port record;
BEGIN
    FOREACH back IN ARRAY ARRAY['1 day', '7 days', '1 month', '3 months', '1 year', NULL]::interval[] LOOP
        EXIT WHEN cardinality(pending) = 0;
        lo := coalesce("at" - back, '-infinity');
        cut := '{}';
        FOR port IN
            SELECT t.charge_point_id, t.connector_id, t.faulted, t.unavailable, t.shows_16,
                   (SELECT lower(r) FROM unnest(t.down) AS r WHERE upper(r) = "at") AS began
            FROM ocpp_port_timeline(lo, "at", pending) AS t
        LOOP
            CONTINUE WHEN port.began IS NULL;  -- up at `at`
            IF port.began = lo THEN
                cut := cut || port.charge_point_id::text;  -- down for the whole window: look further back
            ELSE
                charge_point_id := port.charge_point_id;
                connector_id := port.connector_id;
                began := port.began;
                faulted := port.faulted;
                unavailable := port.unavailable;
                shows_16 := port.shows_16;
                RETURN NEXT;
            END IF;
        END LOOP;
        pending := ARRAY(SELECT DISTINCT unnest(cut));
    END LOOP;
END
$$;
COMMENT ON FUNCTION ocpp_outage_starts(text[], timestamptz) IS
    'For port_outages: when the down span at "at" of each port of these charge points began, and its faulted, unavailable and shows_16 multiranges, reading back only as far as the span reaches.';

CREATE OR REPLACE FUNCTION port_outages("from" timestamptz, "to" timestamptz, as_of timestamptz DEFAULT now(),
                             charge_point_from text DEFAULT NULL, charge_point_to text DEFAULT NULL)
RETURNS TABLE (
    charge_point_id   VARCHAR(255),
    connector_id      INT,
    start             TIMESTAMPTZ,
    "end"             TIMESTAMPTZ,
    minutes           NUMERIC,
    excluded_minutes  NUMERIC,
    cause             TEXT,
    error_code        VARCHAR(255),
    vendor_error_code VARCHAR(255)
)
LANGUAGE plpgsql STABLE SET jit = off SET enable_memoize = off AS $$  -- as port_uptime
#variable_conflict use_column
BEGIN
    PERFORM ocpp_check_period('port_outages', "from", "to");
    RETURN QUERY
    WITH
    period AS (SELECT "from" AS start_at, greatest("from", least("to", as_of)) AS end_at),
    timeline AS (SELECT t.* FROM period,
                      ocpp_port_timeline(period.start_at, period.end_at, NULL, charge_point_from, charge_point_to) AS t),
    spans AS (
        SELECT t.*, span, ocpp_observed(p.start_at, p.end_at, t.exists_from, t.first_presence) AS observed
        FROM timeline AS t CROSS JOIN period AS p CROSS JOIN LATERAL unnest(t.down) AS span
    ),
    outages AS (SELECT * FROM spans WHERE span && observed),
    -- A span cut by `from` began earlier: the history before `from`, of those charge points only, says when
    -- (ocpp_outage_starts reads back only as far as the outage reaches).
    before_period AS (
        SELECT DISTINCT ON (b.charge_point_id, b.connector_id) b.*
        FROM period AS p,
             ocpp_outage_starts((SELECT coalesce(array_agg(DISTINCT o.charge_point_id), '{}') FROM outages AS o
                                 WHERE lower(o.span) = p.start_at), p.start_at) AS b
        ORDER BY b.charge_point_id, b.connector_id
    ),
    -- A span cut by `to` (before as_of) goes on: the history from `to` to as_of says until when.
    after_period AS (
        SELECT a.charge_point_id, a.connector_id,
               (SELECT upper(r) FROM unnest(a.down) AS r WHERE lower(r) = "to") AS lasts_until
        FROM ocpp_port_timeline("to", greatest("to", as_of),
                                (SELECT coalesce(array_agg(DISTINCT o.charge_point_id), '{}') FROM outages AS o
                                 WHERE upper(o.span) = "to" AND "to" < as_of)) AS a
    ),
    own_spans AS (
        SELECT o.charge_point_id, o.connector_id, o.span, o.observed,
               coalesce(b.began, lower(o.span)) AS start,
               CASE WHEN upper(o.span) < p.end_at THEN upper(o.span)
                    WHEN as_of <= "to" THEN NULL                     -- down at as_of: ongoing
                    WHEN a.lasts_until IS NULL THEN "to"             -- up again at `to`
                    WHEN a.lasts_until >= as_of THEN NULL            -- still down at as_of
                    ELSE a.lasts_until
               END AS "end",
               -- What applied at the span's own start, from the timeline that covers it.
               CASE WHEN b.began IS NOT NULL THEN b.faulted ELSE o.faulted END AS faulted,
               CASE WHEN b.began IS NOT NULL THEN b.unavailable ELSE o.unavailable END AS unavailable,
               CASE WHEN b.began IS NOT NULL THEN b.shows_16 ELSE o.shows_16 END AS shows_16
        FROM outages AS o
        CROSS JOIN period AS p
        LEFT JOIN before_period AS b
               ON b.charge_point_id = o.charge_point_id AND b.connector_id = o.connector_id
              AND lower(o.span) = p.start_at
        LEFT JOIN after_period AS a
               ON a.charge_point_id = o.charge_point_id AND a.connector_id = o.connector_id
              AND upper(o.span) = "to"
    )
    SELECT s.charge_point_id, s.connector_id, s.start, s."end",
           round(ocpp_minutes(tstzmultirange(s.span) * s.observed), 2),
           round(ocpp_minutes(tstzmultirange(s.span) * s.observed * coalesce(
               (SELECT range_agg(tstzrange(e.starts_at, e.ends_at))
                FROM exclusions AS e
                WHERE e.charge_point_id = s.charge_point_id
                  AND (e.connector_id IS NULL OR e.connector_id = s.connector_id)
                  AND e.starts_at < upper(s.span) AND e.ends_at > lower(s.span)), '{}')), 2),
           CASE WHEN s.start <@ s.faulted THEN 'FAULTED'
                WHEN s.start <@ s.unavailable THEN 'UNAVAILABLE'
                ELSE 'OFFLINE' END,
           w.error_code, w.vendor_error_code
    FROM own_spans AS s
    -- The fault details in force at the start: the port's winning 1.6 row then, if the port showed 1.6. Found
    -- in two steps by the key index, the start's month and the one before it first, as the timeline's in-force
    -- probe (rows_16) is; the older months are read only if the history has rows before the month before `to`.
    LEFT JOIN LATERAL (
        SELECT h.error_code, h.vendor_error_code
        FROM status_history AS h
        WHERE s.start <@ s.shows_16
          AND h.charge_point_id = s.charge_point_id AND h.connector_id = s.connector_id
          AND h.evse_connector_id IS NULL
          AND h.effective_at = coalesce(
              (SELECT n.effective_at FROM status_history AS n
               WHERE n.charge_point_id = s.charge_point_id AND n.connector_id = s.connector_id
                 AND n.evse_connector_id IS NULL
                 AND n.effective_at <= s.start AND n.effective_at >= ocpp_month_before(s.start)
               ORDER BY n.evse_connector_id DESC, n.effective_at DESC
               LIMIT 1),
              CASE WHEN EXISTS (SELECT FROM status_history AS o WHERE o.effective_at < ocpp_month_before("to")) THEN
              (SELECT n.effective_at FROM status_history AS n
               WHERE n.charge_point_id = s.charge_point_id AND n.connector_id = s.connector_id
                 AND n.evse_connector_id IS NULL AND n.effective_at < ocpp_month_before(s.start)
               ORDER BY n.evse_connector_id DESC, n.effective_at DESC
               LIMIT 1) END)
        ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
        LIMIT 1
    ) AS w ON true
    ORDER BY s.charge_point_id COLLATE "C", s.connector_id, s.start;
END
$$;
