--
-- bench/loadcurve_storage.sql
--	  Bytes per stored load-curve point and the time of BI queries, for
--	  switchgrid.loadcurve_days (one row per meter, direction and Paris day,
--	  read through the view switchgrid.loadcurve) against a table of one row
--	  per point (the 0.2.0 table before it, with its primary key), both
--	  filled with the same rows in this run.  Also times the store: the
--	  same points through switchgrid.loadcurve_write() against COPY into
--	  the row table.
--
-- Run it with psql as a superuser in a database where switchgrid is
-- installed (the sandbox: dev/sandbox psql -f bench/loadcurve_storage.sql).
-- It works in schema sg_bench, which it drops first and leaves behind for a
-- look (DROP SCHEMA sg_bench CASCADE).  Variables, with -v: meters (250;
-- one in ten is PT10M), years (2; PT10M meters get half of it).
-- Prints EXPLAIN (ANALYZE, BUFFERS) of each query on both, then one table
-- of figures, each with its ratio to the row table.
--
\set ON_ERROR_STOP on
\if :{?meters} \else \set meters 250 \endif
\if :{?years} \else \set years 2 \endif
\pset pager off
SET client_min_messages = warning;
SET jit = off;
DROP SCHEMA IF EXISTS sg_bench CASCADE;
CREATE SCHEMA sg_bench;

-- a row a point, as switchgrid.loadcurve was
CREATE TABLE sg_bench.loadcurve_rows (
    prm           text NOT NULL,
    direction     text NOT NULL,
    ts            timestamptz NOT NULL,
    power_w       double precision,
    request_id    uuid NOT NULL,
    fetched_at    timestamptz NOT NULL DEFAULT now(),
    step_s        integer CHECK (step_s > 0),
    wh            double precision GENERATED ALWAYS AS (power_w * step_s / 3600) STORED,
    PRIMARY KEY (prm, direction, ts)
);
-- the compact table and its view, as the extension has them
CREATE TABLE sg_bench.loadcurve_days (LIKE switchgrid.loadcurve_days INCLUDING ALL)
    WITH (toast_tuple_target = 8160);
SELECT format('CREATE VIEW sg_bench.loadcurve AS %s',
              replace(pg_get_viewdef('switchgrid.loadcurve'::regclass),
                      'switchgrid.loadcurve_days', 'sg_bench.loadcurve_days')) \gexec

-- the fleet: PRMs, steps, one request each; a measure in a thousand missing
CREATE TABLE sg_bench.meters AS
SELECT lpad((10000000000000 + i)::text, 14, '0') AS prm,
       CASE WHEN i % 10 = 0 THEN 600 ELSE 1800 END AS step_s,
       timestamptz '2024-01-01 00:00 Europe/Paris'
         - CASE WHEN i % 10 = 0 THEN :years * interval '6 months'
                ELSE :years * interval '1 year' END AS since,
       md5(i::text)::uuid AS request_id
FROM generate_series(1, :meters) i;

SELECT clock_timestamp() AS t0 \gset
INSERT INTO sg_bench.loadcurve_rows (prm, direction, ts, power_w, request_id, step_s)
SELECT m.prm, 'CONSUMPTION', t,
       CASE WHEN random() < 0.001 THEN NULL ELSE round(random() * 6000) END,
       m.request_id, m.step_s
FROM sg_bench.meters m,
     generate_series(m.since, timestamptz '2024-01-01 00:00 Europe/Paris' - interval '1 second',
                     m.step_s * interval '1 second') t;
SELECT clock_timestamp() AS t1 \gset
-- the same points, one write per meter, as the worker stores a request
SELECT count(switchgrid.loadcurve_write('sg_bench', m.request_id, now(), 'CONSUMPTION',
                                        r.prms, r.ts, r.steps, r.powers))
FROM sg_bench.meters m,
     LATERAL (SELECT array_agg(prm ORDER BY ts) AS prms, array_agg(ts ORDER BY ts) AS ts,
                     array_agg(step_s ORDER BY ts) AS steps, array_agg(power_w ORDER BY ts) AS powers
              FROM sg_bench.loadcurve_rows r WHERE r.prm = m.prm) r \gset
SELECT clock_timestamp() AS t2 \gset
VACUUM ANALYZE sg_bench.loadcurve_rows;
VACUUM ANALYZE sg_bench.loadcurve_days;

CREATE TABLE sg_bench.figures (what text, rows_table numeric, compact numeric, unit text);
INSERT INTO sg_bench.figures
SELECT 'points', n, (SELECT count(*) FROM sg_bench.loadcurve), 'points'
FROM (SELECT count(*) AS n FROM sg_bench.loadcurve_rows) c;
INSERT INTO sg_bench.figures
SELECT 'bytes per point, heap and indexes', round(pg_total_relation_size('sg_bench.loadcurve_rows')::numeric / n, 1),
       round(pg_total_relation_size('sg_bench.loadcurve_days')::numeric / n, 1), 'B'
FROM (SELECT count(*) AS n FROM sg_bench.loadcurve_rows) c;
INSERT INTO sg_bench.figures
SELECT 'bytes per point, indexes only', round(pg_indexes_size('sg_bench.loadcurve_rows')::numeric / n, 1),
       round(pg_indexes_size('sg_bench.loadcurve_days')::numeric / n, 1), 'B'
FROM (SELECT count(*) AS n FROM sg_bench.loadcurve_rows) c;

-- Best of five runs of a query, in ms.
CREATE FUNCTION sg_bench.best_ms(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    best numeric;
    t timestamptz;
    i integer;
BEGIN
    FOR i IN 1..5 LOOP
        t := clock_timestamp();
        EXECUTE q;
        best := LEAST(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RETURN round(best, 2);
END $$;

-- The BI queries: one meter for a month, one meter for two years, the
-- whole fleet for a day; the last two on the view also with its "day".
CREATE TABLE sg_bench.queries (name text, sql text, compact_sql text);
INSERT INTO sg_bench.queries VALUES
('one meter, a month',
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve_rows WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND ts >= '2023-06-01 00:00+02' AND ts < '2023-07-01 00:00+02'$$,
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND ts >= '2023-06-01 00:00+02' AND ts < '2023-07-01 00:00+02'$$),
('one meter, a month, by day too',
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve_rows WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND ts >= '2023-06-01 00:00+02' AND ts < '2023-07-01 00:00+02'$$,
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND day >= '2023-06-01' AND day < '2023-07-01'$$),
('one meter, two years',
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve_rows WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND ts >= '2022-01-01 00:00+01' AND ts < '2024-01-01 00:00+01'$$,
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve WHERE prm = '10000000000001' AND direction = 'CONSUMPTION' AND ts >= '2022-01-01 00:00+01' AND ts < '2024-01-01 00:00+01'$$),
('the fleet, a day',
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve_rows WHERE ts >= '2023-06-15 00:00+02' AND ts < '2023-06-16 00:00+02'$$,
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve WHERE ts >= '2023-06-15 00:00+02' AND ts < '2023-06-16 00:00+02'$$),
('the fleet, a day, by day too',
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve_rows WHERE ts >= '2023-06-15 00:00+02' AND ts < '2023-06-16 00:00+02'$$,
 $$SELECT count(*), round(sum(wh)::numeric, 3) FROM sg_bench.loadcurve WHERE day = '2023-06-15'$$);

-- the plans, before (row table) and after (view)
CREATE FUNCTION sg_bench.plans() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    q record;
    line text;
BEGIN
    FOR q IN SELECT * FROM sg_bench.queries LOOP
        RETURN NEXT '==== ' || q.name || ', rows table: ' || q.sql;
        FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ' || q.sql LOOP
            RETURN NEXT line;
        END LOOP;
        RETURN NEXT '==== ' || q.name || ', compact: ' || q.compact_sql;
        FOR line IN EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ' || q.compact_sql LOOP
            RETURN NEXT line;
        END LOOP;
    END LOOP;
END $$;
\pset tuples_only on
SELECT * FROM sg_bench.plans();
\pset tuples_only off

-- the same answers from both
SELECT name, r.a = c.a AS same_answer
FROM sg_bench.queries q,
     LATERAL (SELECT query_to_xml(q.sql, false, false, '')::text AS a) r,
     LATERAL (SELECT query_to_xml(q.compact_sql, false, false, '')::text AS a) c;

INSERT INTO sg_bench.figures
SELECT name || ' (query)', sg_bench.best_ms(sql), sg_bench.best_ms(compact_sql), 'ms'
FROM sg_bench.queries;

-- The store: 105,168 points (six years of PT30M) of one meter, by
-- switchgrid.loadcurve_write() into an empty compact table, against COPY of
-- the same rows (from a file written here) into an empty row table.
CREATE TABLE sg_bench.curve AS
SELECT '20000000000000'::text AS prm, 'CONSUMPTION'::text AS direction, t AS ts,
       round(random() * 6000)::float8 AS power_w, md5('curve')::uuid AS request_id,
       now() AS fetched_at, 1800 AS step_s
FROM generate_series(timestamptz '2018-01-01 00:00 Europe/Paris', timestamptz '2018-01-01 00:00 Europe/Paris' + 105167 * interval '30 minutes', interval '30 minutes') t;
COPY sg_bench.curve TO '/tmp/sg_bench_curve.copy';
CREATE TABLE sg_bench.curve_arrays AS
SELECT array_agg(prm ORDER BY ts) AS prms, array_agg(ts ORDER BY ts) AS ts,
       array_agg(step_s ORDER BY ts) AS steps, array_agg(power_w ORDER BY ts) AS powers
FROM sg_bench.curve;
CREATE TABLE sg_bench.copy_target (LIKE sg_bench.loadcurve_rows INCLUDING ALL);
CREATE FUNCTION sg_bench.store_ms(how text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    best numeric;
    t timestamptz;
    i integer;
BEGIN
    FOR i IN 1..3 LOOP
        TRUNCATE sg_bench.copy_target, sg_bench.loadcurve_days;
        t := clock_timestamp();
        IF how = 'copy' THEN
            COPY sg_bench.copy_target (prm, direction, ts, power_w, request_id, fetched_at, step_s)
            FROM '/tmp/sg_bench_curve.copy';
        ELSE
            PERFORM switchgrid.loadcurve_write('sg_bench', md5('curve')::uuid, now(), 'CONSUMPTION',
                                               prms, ts, steps, powers)
            FROM sg_bench.curve_arrays;
        END IF;
        best := LEAST(best, extract(epoch FROM clock_timestamp() - t) * 1000);
    END LOOP;
    RETURN round(best, 1);
END $$;
INSERT INTO sg_bench.figures
SELECT 'store 105,168 points (COPY / loadcurve_write)', sg_bench.store_ms('copy'),
       sg_bench.store_ms('write'), 'ms';
-- and merging them again over themselves (a later request over the same days)
INSERT INTO sg_bench.figures
SELECT 'the same write again, merged over itself', NULL,
       sg_bench.best_ms($$SELECT switchgrid.loadcurve_write('sg_bench', md5('again')::uuid, now(), 'CONSUMPTION', prms, ts, steps, powers) FROM sg_bench.curve_arrays$$), 'ms';
\! rm -f /tmp/sg_bench_curve.copy

\echo
SELECT what, rows_table, compact, unit,
       CASE WHEN rows_table > 0 THEN round(compact / rows_table, 2) END AS "compact / rows"
FROM sg_bench.figures;
