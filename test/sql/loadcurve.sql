--
-- loadcurve: switchgrid_loadcurve() turns LOADCURVE data into rows
--
\! python3 test/sim/simctl.py reset
SET timezone = 'Europe/Paris';

-- one order, four curves: the spring and autumn DST days, a PT10M meter
-- over a week, and two meters in one request
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-03-31', '2024-04-01'),
    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-10-27', '2024-10-28'),
    switchgrid_request('LOADCURVE', ARRAY['30001234567890'], 'CONSUMPTION', '2024-01-08', '2024-01-15'),
    switchgrid_request('LOADCURVE', ARRAY['09111642617347', '30001234567890'], 'CONSUMPTION',
                       '2024-06-01', '2024-06-02'))) ->> 'id' AS order_id
\gset
SELECT r->>'status' AS status, count(*)
FROM jsonb_array_elements(await_order(:'order_id')->'requests') r GROUP BY 1;
SELECT (await_order(:'order_id')->'requests'->>0)::jsonb->>'id' AS spring,
       (await_order(:'order_id')->'requests'->>1)::jsonb->>'id' AS autumn,
       (await_order(:'order_id')->'requests'->>2)::jsonb->>'id' AS tenmin,
       (await_order(:'order_id')->'requests'->>3)::jsonb->>'id' AS multi
\gset

-- spring forward: 23 hours, 46 half-hours, stamped at the start of each step
SELECT prm, count(*) AS steps, min(ts) AS first, max(ts) AS last,
       count(*) FILTER (WHERE power_w IS NULL) AS gaps
FROM switchgrid_loadcurve(:'spring') GROUP BY prm;
SELECT ts, power_w FROM switchgrid_loadcurve(:'spring') ORDER BY ts LIMIT 5;
-- fall back: 25 hours, 50 half-hours, 02:00-03:00 twice
SELECT count(*) AS steps, count(DISTINCT ts) AS distinct_ts
FROM switchgrid_loadcurve(:'autumn');
SELECT ts, power_w FROM switchgrid_loadcurve(:'autumn')
WHERE ts >= '2024-10-27 01:30+02' AND ts < '2024-10-27 03:30+01' ORDER BY ts;

-- a PT10M meter over a week: 1008 steps, gaps kept as NULL rows
SELECT count(*) AS steps, count(power_w) AS measured, min(power_w) > 0 AS positive,
       round(avg(power_w)) AS mean_w
FROM switchgrid_loadcurve(:'tenmin');

-- every step says its length and its energy: W x hours
SELECT step_s, count(*) AS steps, bool_and(wh = power_w * step_s / 3600) AS wh_exact,
       count(wh) = count(power_w) AS wh_null_where_power_is
FROM switchgrid_loadcurve(:'tenmin') GROUP BY step_s;

-- resampled by the API: 30min and 1h
SELECT count(*) AS steps, min(step_s), max(step_s) FROM switchgrid_loadcurve(:'tenmin', '30min');
SELECT count(*) AS steps FROM switchgrid_loadcurve(:'tenmin', 'PT1H');
-- a day (a Paris day) is summed here from the steps, and says how many it
-- holds out of the steps the day has: the mean power of the steps held,
-- their energy
SELECT ts, round(power_w::numeric, 1) AS power_w, step_s, round(wh::numeric, 1) AS wh,
       steps, day_steps
FROM switchgrid_loadcurve(:'tenmin', '1d') ORDER BY ts;
-- the DST days at one row per day: 23 hours, 46 half-hours
SELECT ts, step_s, steps, day_steps FROM switchgrid_loadcurve(:'spring', 'P1D');
SELECT ts, step_s, steps, day_steps FROM switchgrid_loadcurve(:'autumn', '1d');
-- a request over a part of a day is never taken for a whole day
SELECT ts, steps, day_steps FROM switchgrid_loadcurve(
    (await_order((switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
        '2024-06-03 22:00', '2024-06-04 02:00'))->>'id')::uuid)->'requests'->0->>'id')::uuid, '1d')
ORDER BY ts;

-- R63: Enedis' raw file, read at the request's dataUrl (it is recorded
-- here), each point stamped at the END of its step in Paris local time:
-- the same rows as LOADCURVE's, gaps left out
SELECT (await_order((switchgrid_order(switchgrid_request('R63', ARRAY['09111642617347'], 'SOUTIRAGE',
           '2024-03-31', '2024-04-01'))->>'id')::uuid)->'requests'->0->>'id') AS r63
\gset
SELECT count(*) AS steps, min(ts) AS first, max(ts) AS last, min(step_s), max(step_s)
FROM switchgrid_loadcurve(:'r63');
SELECT count(*) AS differing
FROM switchgrid_loadcurve(:'r63') r
FULL JOIN (SELECT * FROM switchgrid_loadcurve(:'spring') WHERE power_w IS NOT NULL) l USING (ts)
WHERE r.power_w IS DISTINCT FROM l.power_w OR r.step_s IS DISTINCT FROM l.step_s;
SELECT ts, step_s, steps, day_steps,
       round(wh::numeric, 6) = (SELECT round(sum(wh)::numeric, 6) FROM switchgrid_loadcurve(:'r63')) AS wh_is_the_sum
FROM switchgrid_loadcurve(:'r63', '1d');
-- an R63 file is not resampled to sub-day periods
SELECT sqlstate_of(format('SELECT * FROM switchgrid_loadcurve(%L, %L)', :'r63', '1h'));

-- each step agrees with the simulator's own computation of the curve
\! python3 test/sim/simctl.py curve-summary 30001234567890 CONSUMPTION 2024-01-07T23:00:00Z 2024-01-14T23:00:00Z
SELECT format('steps=%s nulls=%s sum=%s first=%s',
              count(*), count(*) - count(power_w), sum(power_w)::bigint,
              to_char(min(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS summary
FROM switchgrid_loadcurve(:'tenmin');

-- two meters in one request: the per-PRM shape
SELECT prm, count(*) AS steps FROM switchgrid_loadcurve(:'multi') GROUP BY prm ORDER BY prm;

-- bad periods are refused before any HTTP call
\! python3 test/sim/simctl.py reset
SELECT * FROM switchgrid_loadcurve(:'spring', '7min');
SELECT * FROM switchgrid_loadcurve(:'spring', 'PT1H30M');
SELECT * FROM switchgrid_loadcurve(NULL);
\! python3 test/sim/simctl.py count

-- data that is not there: a request that does not exist, or is not a load curve
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000000');

-- a failed load curve, then the same meter after activation
SELECT (await_order((switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['22222222222222'],
            since => '2024-03-01', until => '2024-03-02'))->>'id')::uuid)->'requests'->0) ->> 'errorMessage' AS error;

-- a meter whose load curve was never collected: without the retry flag the
-- request fails with Enedis' message...
SELECT r->>'status' AS status, r->>'errorMessage' AS error
FROM jsonb_array_elements(await_order((switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['12345678901234'],
         since => '2024-03-01', until => '2024-03-02'))->>'id')::uuid)->'requests') r;
-- ...with it, Switchgrid waits for the activation and then succeeds
SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['12345678901234'],
           since => '2024-03-01', until => '2024-03-02', retry_after_activation => true))->>'id' AS retried
\gset
SELECT r->>'status' AS status
FROM jsonb_array_elements(await_order(:'retried')->'requests') r;
SELECT count(*) AS steps FROM switchgrid_loadcurve((await_order(:'retried')->'requests'->0->>'id')::uuid);

RESET timezone;

-- the parser takes JSON objects in any key order, and refuses what is not a curve
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"note\": \"x\", \"values\": [1, null, 3], \"endsAt\": \"2024-01-01T01:30:00Z\", \"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\"}"}'
SELECT prm, ts AT TIME ZONE 'UTC' AS ts_utc, power_w FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"period\": \"P1D\", \"startsAt\": \"2024-03-30T23:00:00Z\", \"values\": [1, 2]}"}'
SELECT ts AT TIME ZONE 'UTC' AS ts_utc, power_w FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [[1, 2], 3]}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"notaprm\": {\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1]}}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": 5}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"period\": \"PT30M30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1]}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"values\": [1, 2]}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "{\"period\": \"PT30M\", \"startsAt\": \"2024-01-01T00:00:00Z\", \"values\": [1, \"abc\"]}"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/data$", "status": 200, "body": "[1, 2]"}'
SELECT * FROM switchgrid_loadcurve('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py clear-faults
