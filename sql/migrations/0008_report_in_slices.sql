-- The uptime report in slices: port_uptime and port_outages take an optional range of charge points, so that
-- `ocpp-consumer report` can compute a fleet's report on several connections at once, each slice by one server
-- process, and write the slices one after the other (BENCHMARKS.md, "The report in slices").
--
-- A slice is a range of charge point ids in byte order, [charge_point_from, charge_point_to), NULL meaning no
-- bound, the order the report is sorted in: slices that cover the ids from NULL to NULL, reported one after the
-- other, are the whole report, row for row (tests/test_report_slices.py). A charge point's ports are all in its slice,
-- and so are its exclusions and presence.
--
-- The bodies are those of migrations 0006 (ocpp_port_timeline, port_outages) and 0007 (port_uptime), restated
-- because a function's arguments cannot be added in place (the ledger forbids editing a landed migration); the
-- changes are the two new arguments, passed down to the timeline, which filters the series it lists by them,
-- port_outages' enable_memoize = off, formerly set by 0007, now in its definition, the period check both
-- carried, now one function, and the lookup of a 1.6 port's status in force at a moment (below).
--
-- That lookup (the newest row of a port's series at or before the moment, by the version order) sorted every
-- row of the port before it, all retained months of them: the key index (charge_point_id, connector_id,
-- evse_connector_id, effective_at, event_id) does not give a 1.6 port's rows in effective_at order as the planner
-- sees it, since they are selected by evse_connector_id IS NULL, which it does not take for an equality. So the
-- report's cost grew with the history kept, not with the period. Now it first takes the newest effective time
-- ordered as the index is (evse_connector_id first: it changes nothing, every row read has NULL there), which
-- reads one index entry per month's partition whatever the planner's estimates, then the winner among the rows at
-- that time (BENCHMARKS.md, "The in-force probe"). The timeline's probe at the period's start and port_outages'
-- fault details at an outage's start both use it. A 2.x connector's series (evse_connector_id = its connector) is
-- read in order already. A charge point's own status (connector 0) is still sorted: its rows may carry any
-- evse_connector_id, and they are few.
--
-- With arguments added, the old signatures would make every call ambiguous, so they are dropped; EXECUTE stays
-- granted to PUBLIC, as for every function, so readers keep calling them.

DROP FUNCTION port_uptime(timestamptz, timestamptz, timestamptz);
DROP FUNCTION port_outages(timestamptz, timestamptz, timestamptz);
DROP FUNCTION ocpp_port_timeline(timestamptz, timestamptz, text[]);

-- Whether charge point `id` is in the slice [charge_point_from, charge_point_to) in byte order (COLLATE "C", the
-- report's order whatever the database's collation); a NULL bound is no bound. Inlined where it is used.
CREATE FUNCTION ocpp_in_slice(id text, charge_point_from text, charge_point_to text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (charge_point_from IS NULL OR id COLLATE "C" >= charge_point_from)
       AND (charge_point_to IS NULL OR id COLLATE "C" < charge_point_to)
$$;
COMMENT ON FUNCTION ocpp_in_slice(text, text, text) IS
    'Whether a charge point id is in the slice [charge_point_from, charge_point_to) in byte order (NULL: no bound).';

-- port_uptime's and port_outages' refusal of an empty or reversed period, naming the function.
CREATE FUNCTION ocpp_check_period(function_name text, "from" timestamptz, "to" timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT "from" < "to" THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s: the period [%s, %s) is empty or reversed: "from" must be before "to"',
                             function_name, "from", "to");
    END IF;
END
$$;

-- Each port's timeline over [lo, hi): when it was down, and why, by the rule of docs/tables.md ("Port status over
-- time"). Every multirange lies within [lo, hi) and within the port's existence. charge_points limits it to those
-- charge points (NULL: all of them); charge_point_from and charge_point_to to a slice of them (ocpp_in_slice).
CREATE FUNCTION ocpp_port_timeline(lo timestamptz, hi timestamptz, charge_points text[] DEFAULT NULL,
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
    SELECT serial_number AS charge_point_id FROM charge_point
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
-- The rows that decide a series over [lo, hi): the one in force at lo (the greatest version with effective_at
-- <= lo) and every row after lo and before hi. A 1.6 port's series: its rows without a physical connector.
-- Its in-force row is found in two steps, each read from the key index (charge_point_id, connector_id,
-- evse_connector_id, effective_at, event_id): the newest effective time at or before lo, ordered by
-- evse_connector_id first (NULL in every row read) because that is the index's order, so each month's partition
-- is read backwards from lo and stops at once; then the rows at that time, the winner by the version order.
rows_16 AS (
    SELECT p.charge_point_id, p.connector_id, r.*
    FROM ports AS p
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = p.charge_point_id AND h.connector_id = p.connector_id
           AND h.evse_connector_id IS NULL
           AND h.effective_at = (SELECT n.effective_at FROM status_history AS n
                                 WHERE n.charge_point_id = p.charge_point_id AND n.connector_id = p.connector_id
                                   AND n.evse_connector_id IS NULL AND n.effective_at <= lo
                                 ORDER BY n.evse_connector_id DESC, n.effective_at DESC
                                 LIMIT 1)
         ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = p.charge_point_id AND h.connector_id = p.connector_id
          AND h.evse_connector_id IS NULL AND h.effective_at > lo AND h.effective_at < hi
    ) AS r
),
-- Each physical connector of a 2.x EVSE (the port connector_id = evseId) is a series of its own.
rows_2x AS (
    SELECT pc.charge_point_id, pc.evse_id AS connector_id, pc.connector_id AS evse_connector_id, r.*
    FROM physical_connectors AS pc
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = pc.charge_point_id AND h.connector_id = pc.evse_id
           AND h.evse_connector_id = pc.connector_id AND h.effective_at <= lo
         ORDER BY h.effective_at DESC, h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = pc.charge_point_id AND h.connector_id = pc.evse_id
          AND h.evse_connector_id = pc.connector_id AND h.effective_at > lo AND h.effective_at < hi
    ) AS r
),
-- The charge point's own status: every row with connector_id 0, whichever family or action reported it (one
-- value group in the state tables too). Such rows are few, so the in-force probe may sort them.
rows_own AS (
    SELECT cp.charge_point_id, r.*
    FROM listed_charge_points AS cp
    CROSS JOIN LATERAL (
        (SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
         FROM status_history AS h
         WHERE h.charge_point_id = cp.charge_point_id AND h.connector_id = 0 AND h.effective_at <= lo
         ORDER BY h.effective_at DESC, h.received_at DESC, h.event_id DESC, h.digest DESC
         LIMIT 1)
        UNION ALL
        SELECT h.effective_at, h.received_at, h.event_id, h.digest, h.status
        FROM status_history AS h
        WHERE h.charge_point_id = cp.charge_point_id AND h.connector_id = 0 AND h.effective_at > lo
          AND h.effective_at < hi
    ) AS r
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
COMMENT ON FUNCTION ocpp_port_timeline(timestamptz, timestamptz, text[], text, text) IS
    'Each port''s timeline over [lo, hi) by the rule of docs/tables.md ("Port status over time"): when it was down, faulted, unavailable, offline, and showing OCPP 1.6; for port_uptime and port_outages.';


-- Per port, the report's figures for [from, to) as of as_of (docs/tables.md, "The uptime report"), of every
-- charge point or of a slice of them.
CREATE FUNCTION port_uptime("from" timestamptz, "to" timestamptz, as_of timestamptz DEFAULT now(),
                            charge_point_from text DEFAULT NULL, charge_point_to text DEFAULT NULL)
RETURNS TABLE (
    charge_point_id  VARCHAR(255),
    connector_id     INT,
    observed_minutes NUMERIC,
    outage_minutes   NUMERIC,
    excluded_minutes NUMERIC,
    uptime_percent   NUMERIC,
    outages          BIGINT
)
-- JIT off: the index probes per series make the planner's cost estimates large enough to compile the plan,
-- which took longer (1.3 s of 10 over 10,000 charge points) than it saved. Memoize off: every series is probed
-- once, so its cache never hits, and with a larger work_mem (an analyst's session) the planner put it on every
-- probe, where its misses made the whole report ~4× slower (0006 over 300,000 ports: 17 s at work_mem 4MB, 64 s
-- at 64MB).
LANGUAGE plpgsql STABLE SET jit = off SET enable_memoize = off AS $$
#variable_conflict use_column
BEGIN
    PERFORM ocpp_check_period('port_uptime', "from", "to");
    RETURN QUERY
    WITH
    -- Minutes after as_of have not happened yet: the report covers [from, end_at).
    period AS (SELECT "from" AS start_at, greatest("from", least("to", as_of)) AS end_at),
    timeline AS (SELECT t.* FROM period,
                      ocpp_port_timeline(period.start_at, period.end_at, NULL, charge_point_from, charge_point_to) AS t),
    figures AS (
        SELECT t.charge_point_id, t.connector_id, t.down,
               ocpp_observed(p.start_at, p.end_at, t.exists_from, t.first_presence) AS observed,
               (SELECT range_agg(tstzrange(e.starts_at, e.ends_at))
                FROM exclusions AS e
                WHERE e.charge_point_id = t.charge_point_id
                  AND (e.connector_id IS NULL OR e.connector_id = t.connector_id)
                  AND e.starts_at < p.end_at AND e.ends_at > p.start_at) AS excluded
        FROM timeline AS t CROSS JOIN period AS p
    ),
    -- Each figure from one pass over the port's pieces, in this query rather than through ocpp_minutes: a call
    -- of an SQL function per figure and port was half the report's time over a fleet of few rows per port.
    -- observed is one range (or none), so its minutes are its bounds' difference; down * observed has one
    -- piece per maximal down span overlapping it (the spans are disjoint and not adjacent, observed has no gap).
    minutes AS (
        SELECT f.charge_point_id, f.connector_id,
               coalesce(extract(epoch FROM upper(f.observed) - lower(f.observed)) / 60, 0) AS observed,
               d.outage, d.outages,
               CASE WHEN f.excluded IS NULL OR d.outages = 0 THEN 0
                    ELSE ocpp_minutes(f.down * f.observed * f.excluded) END AS excluded
        FROM figures AS f
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(extract(epoch FROM upper(piece) - lower(piece))), 0) / 60 AS outage,
                   count(*) AS outages
            FROM unnest(f.down * f.observed) AS piece
        ) AS d
    )
    SELECT m.charge_point_id, m.connector_id, round(m.observed, 2), round(m.outage, 2), round(m.excluded, 2),
           -- 23 CFR 680.116(b): (observed - (outage - excluded)) / observed x 100; rounded half up, like all.
           round((m.observed - (m.outage - m.excluded)) / nullif(m.observed, 0) * 100, 3),
           m.outages
    FROM minutes AS m
    ORDER BY m.charge_point_id COLLATE "C", m.connector_id;
END
$$;

COMMENT ON FUNCTION port_uptime(timestamptz, timestamptz, timestamptz, text, text) IS
    'Per port over [from, to) as of as_of (default now): observed, outage and excluded minutes, uptime percent (23 CFR 680.116(b)) and the number of outages; of the charge points with charge_point_from <= id < charge_point_to in byte order (NULL: no bound). See docs/tables.md, "The uptime report".';

-- Per maximal down span that overlaps the observed part of [from, to): the span's own start and end (end NULL
-- while ongoing at as_of), its minutes inside the observed part, the excluded part of them, and why it began; of
-- every charge point or of a slice of them.
CREATE FUNCTION port_outages("from" timestamptz, "to" timestamptz, as_of timestamptz DEFAULT now(),
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
    -- A span cut by `from` began earlier: the history before `from`, of those charge points only, says when.
    before_period AS (
        SELECT b.*, (SELECT lower(r) FROM unnest(b.down) AS r WHERE upper(r) = p.start_at) AS began
        FROM period AS p,
             ocpp_port_timeline('-infinity', p.start_at,
                                (SELECT coalesce(array_agg(DISTINCT o.charge_point_id), '{}') FROM outages AS o
                                 WHERE lower(o.span) = p.start_at)) AS b
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
    -- in two steps by the key index, as the timeline's in-force probe (rows_16) is.
    LEFT JOIN LATERAL (
        SELECT h.error_code, h.vendor_error_code
        FROM status_history AS h
        WHERE s.start <@ s.shows_16
          AND h.charge_point_id = s.charge_point_id AND h.connector_id = s.connector_id
          AND h.evse_connector_id IS NULL
          AND h.effective_at = (SELECT n.effective_at FROM status_history AS n
                                WHERE n.charge_point_id = s.charge_point_id AND n.connector_id = s.connector_id
                                  AND n.evse_connector_id IS NULL AND n.effective_at <= s.start
                                ORDER BY n.evse_connector_id DESC, n.effective_at DESC
                                LIMIT 1)
        ORDER BY h.received_at DESC, h.event_id DESC, h.digest DESC
        LIMIT 1
    ) AS w ON true
    ORDER BY s.charge_point_id COLLATE "C", s.connector_id, s.start;
END
$$;
COMMENT ON FUNCTION port_outages(timestamptz, timestamptz, timestamptz, text, text) IS
    'Per maximal down span of a port overlapping the observed part of [from, to) as of as_of (default now): its own start and end (NULL: ongoing), minutes and excluded minutes inside the period and before as_of, cause (FAULTED, UNAVAILABLE, OFFLINE) and the 1.6 error codes in force at its start; of the charge points with charge_point_from <= id < charge_point_to in byte order (NULL: no bound). See docs/tables.md, "The uptime report".';
