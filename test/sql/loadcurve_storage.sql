--
-- loadcurve_storage: how switchgrid.loadcurve keeps points, one row per
-- meter, direction and Paris day in switchgrid.loadcurve_days, seen through
-- the view.  Points are written here as the store writes them
-- (switchgrid.loadcurve_write()), into the test environment's tables.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- a PT30M series over the spring DST change, with one measure missing
SELECT switchgrid.loadcurve_write('switchgrid_test', '00000000-0000-0000-0000-00000000000a',
    '2024-05-01 00:00+00', 'CONSUMPTION',
    array_fill('09111642617347'::text, ARRAY[142]),
    ARRAY(SELECT timestamptz '2024-03-30 23:00+00' + i * interval '30 minutes'
          FROM generate_series(0, 141) i),
    array_fill(1800, ARRAY[142]),
    ARRAY(SELECT CASE WHEN i = 3 THEN NULL ELSE 1000 + i END::float8
          FROM generate_series(0, 141) i)) AS points;
-- 31 March lasts 23 hours (46 steps), 1 April 24 (48), from Paris midnight
SELECT day, cardinality(ts) AS points, ts[1] AS first, ts[cardinality(ts)] AS last,
       request_ids, source
FROM switchgrid_test.loadcurve_days ORDER BY day;
-- the view: one row per point, a NULL measure is a NULL power_w and wh
SELECT ts, power_w, step_s, wh, day FROM switchgrid_test.loadcurve
WHERE ts < '2024-03-31 01:30+00' ORDER BY ts;

-- a later request over part of 1 April, at PT10M: a step change mid-day;
-- its points replace those at the same instants, the others stay
SELECT switchgrid.loadcurve_write('switchgrid_test', '00000000-0000-0000-0000-00000000000b',
    '2024-05-02 00:00+00', 'CONSUMPTION',
    array_fill('09111642617347'::text, ARRAY[6]),
    ARRAY(SELECT timestamptz '2024-04-01 10:00+00' + i * interval '10 minutes'
          FROM generate_series(0, 5) i),
    array_fill(600, ARRAY[6]),
    ARRAY(SELECT 2000 + i::float8 FROM generate_series(0, 5) i)) AS points;
SELECT day, cardinality(ts) AS points, request_ids, fetched_ats,
       array_to_string(source, '') AS source
FROM switchgrid_test.loadcurve_days ORDER BY day;
SELECT ts, power_w, step_s, wh, request_id, fetched_at FROM switchgrid_test.loadcurve
WHERE ts >= '2024-04-01 09:30+00' AND ts < '2024-04-01 11:30+00' ORDER BY ts;
-- every point once, each from the request that wrote it last
SELECT request_id, count(*), count(DISTINCT ts) FROM switchgrid_test.loadcurve GROUP BY 1 ORDER BY 1;

-- the same request again, later, over the whole of 1 April at PT30M: a
-- second write of it; the PT10M points between the PT30M starts keep the first
SELECT switchgrid.loadcurve_write('switchgrid_test', '00000000-0000-0000-0000-00000000000b',
    '2024-05-03 00:00+00', 'CONSUMPTION',
    array_fill('09111642617347'::text, ARRAY[48]),
    ARRAY(SELECT timestamptz '2024-03-31 22:00+00' + i * interval '30 minutes'
          FROM generate_series(0, 47) i),
    array_fill(1800, ARRAY[48]),
    array_fill(3000::float8, ARRAY[48])) AS points;
SELECT day, cardinality(ts) AS points, request_ids, fetched_ats,
       array_to_string(source, '') AS source
FROM switchgrid_test.loadcurve_days WHERE day = '2024-04-01';
-- as in a table of one row per point, the PT10M points between stay
SELECT count(*) FILTER (WHERE step_s = 600) AS pt10m_left FROM switchgrid_test.loadcurve
WHERE day = '2024-04-01';

-- the autumn DST change: 27 October 2024 lasts 25 hours; two points of one
-- write at the same instant: the later in the arrays wins
SELECT switchgrid.loadcurve_write('switchgrid_test', '00000000-0000-0000-0000-00000000000c',
    '2024-11-01 00:00+00', 'INJECTION',
    array_fill('09111642617347'::text, ARRAY[51]),
    ARRAY(SELECT timestamptz '2024-10-26 22:00+00' + LEAST(i, 49) * interval '30 minutes'
          FROM generate_series(0, 50) i),
    array_fill(1800, ARRAY[51]),
    ARRAY(SELECT i::float8 FROM generate_series(0, 50) i)) AS points;
SELECT direction, day, cardinality(ts) AS points, power_w[50] AS last_power
FROM switchgrid_test.loadcurve_days WHERE direction = 'INJECTION';

-- the real tables saw none of it
SELECT count(*) AS real_points FROM switchgrid.loadcurve
WHERE request_id::text LIKE '00000000-0000-0000-0000-00000000000_';
TRUNCATE switchgrid_test.loadcurve_days;
RESET datestyle;
RESET timezone;
