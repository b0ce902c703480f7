-- The uptime report over a fleet: the same figures as migration 0006, computed in half the time, and a plan
-- that does not depend on the caller's work_mem (BENCHMARKS.md, "The report's SQL (migration 0007)").
--
-- port_uptime is replaced (same signature, same results: tests/test_report.py and the store's property tests
-- hold it to the hand-computed months and to the oracle); port_outages keeps its body and gets the same
-- planner setting.

-- Per port, the report's figures for [from, to) as of as_of (docs/tables.md, "The uptime report").
CREATE OR REPLACE FUNCTION port_uptime("from" timestamptz, "to" timestamptz, as_of timestamptz DEFAULT now())
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
    IF NOT "from" < "to" THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('port_uptime: the period [%s, %s) is empty or reversed: "from" must be before "to"',
                             "from", "to");
    END IF;
    RETURN QUERY
    WITH
    -- Minutes after as_of have not happened yet: the report covers [from, end_at).
    period AS (SELECT "from" AS start_at, greatest("from", least("to", as_of)) AS end_at),
    timeline AS (SELECT t.* FROM period, ocpp_port_timeline(period.start_at, period.end_at) AS t),
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

ALTER FUNCTION port_outages(timestamptz, timestamptz, timestamptz) SET enable_memoize = off;
