--
-- datasets: every Enedis dataset as rows of a typed, consolidated table
--
\! python3 test/sim/simctl.py reset
SET client_min_messages = warning;
SET timezone = 'Europe/Paris';
SET datestyle = 'ISO, YMD';

-- R64, R65, R66 over both DST days of 2024 (Paris), R67 over two months,
-- C68 and C68_ASYNC; an injection meter too
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-30 00:00 Europe/Paris', '2024-04-02 00:00 Europe/Paris'),
    switchgrid_request('R66_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-30 00:00 Europe/Paris', '2024-04-02 00:00 Europe/Paris'),
    switchgrid_request('R64_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-30 00:00 Europe/Paris', '2024-04-02 00:00 Europe/Paris'),
    switchgrid_request('R65', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-10-26 00:00 Europe/Paris', '2024-10-29 00:00 Europe/Paris'),
    switchgrid_request('R66', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-10-26 00:00 Europe/Paris', '2024-10-29 00:00 Europe/Paris'),
    switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-01-01 00:00 Europe/Paris', '2024-03-01 00:00 Europe/Paris'),
    switchgrid_request('C68', ARRAY['09111642617347']),
    switchgrid_request('C68_ASYNC', ARRAY['30001234567890'], 'INJECTION'),
    switchgrid_request('R65_SYNC', ARRAY['30001234567890'], 'INJECTION', '2024-06-01 00:00 Europe/Paris', '2024-06-03 00:00 Europe/Paris'),
    switchgrid_request('R64_SYNC', ARRAY['30001234567890'], 'INJECTION', '2024-06-01 00:00 Europe/Paris', '2024-06-02 00:00 Europe/Paris')
    )) ->> 'id' AS order_id
\gset
SELECT switchgrid_wait(:'order_id') ->> 'status' AS status;
SELECT array_agg(request_id ORDER BY position) AS r FROM switchgrid.requests WHERE order_id = :'order_id' \gset
SELECT (:'r'::uuid[])[1] AS r65, (:'r'::uuid[])[2] AS r66, (:'r'::uuid[])[3] AS r64,
       (:'r'::uuid[])[6] AS r67, (:'r'::uuid[])[7] AS c68 \gset

-- what each request wrote, and its since/until as timestamptz
SELECT position, type, direction, since, until, rows_stored, last_error, data IS NOT NULL AS raw_kept
FROM switchgrid.requests WHERE order_id = :'order_id' ORDER BY position;

-- daily energy in Wh, one row per Paris day: 31 March 2024 has 23 hours,
-- 27 October 25; direction is CONSUMPTION for SOUTIRAGE
SELECT prm, direction, day, wh, pg_typeof(wh) AS type
FROM switchgrid.daily_energy ORDER BY prm, direction, day;

-- the daily maximum in VA and when it was reached (Paris time)
SELECT prm, direction, day, va, reached_at FROM switchgrid.max_power ORDER BY prm, direction, day;

-- indexes: two classes and the totaliser at midnight of each day
SELECT prm, direction, read_at, day, cadran, total, calendar, class_id, class_label, wh
FROM switchgrid.indexes ORDER BY prm, direction, read_at, cadran;

-- the totaliser counts every class, and R65(d) = index(d+1) - index(d)
SELECT count(*) AS readings, bool_and(t.wh = c.wh) AS classes_add_up
FROM switchgrid.indexes t
JOIN (SELECT prm, direction, read_at, sum(wh) AS wh FROM switchgrid.indexes WHERE NOT total
      GROUP BY 1, 2, 3) c USING (prm, direction, read_at)
WHERE t.total;
SELECT count(*) AS days, bool_and(e.wh = i2.wh - i1.wh) AS energy_is_index_difference
FROM switchgrid.daily_energy e
JOIN switchgrid.indexes i1 ON i1.prm = e.prm AND i1.direction = e.direction AND i1.total AND i1.day = e.day
JOIN switchgrid.indexes i2 ON i2.prm = e.prm AND i2.direction = e.direction AND i2.total AND i2.day = e.day + 1;

-- billing quantities per month and class
SELECT prm, direction, class, period_start, period_end, wh, nature, class_label, calendar, reading_reason
FROM switchgrid.billing ORDER BY prm, class, period_start;

-- contracts: numbers in kVA, off-peak hours as given and as ranges
SELECT prm, contract_state, segment, tariff, subscribed_kva, connection_kva,
       injection_connection_kva, voltage_domain, meter_type, off_peak_hours, off_peak,
       address, postal_code, city, jsonb_typeof(raw) AS raw
FROM switchgrid.contracts ORDER BY prm;
SELECT '23:00'::time <@ ANY (off_peak) AS at_23, '12:00'::time <@ ANY (off_peak) AS at_noon
FROM switchgrid.contracts WHERE prm = '09111642617347';

-- every row says which request wrote it
SELECT t, count(*) AS rows, count(DISTINCT request_id) AS requests
FROM (SELECT 'daily_energy' AS t, request_id FROM switchgrid.daily_energy
      UNION ALL SELECT 'max_power', request_id FROM switchgrid.max_power
      UNION ALL SELECT 'indexes', request_id FROM switchgrid.indexes
      UNION ALL SELECT 'billing', request_id FROM switchgrid.billing
      UNION ALL SELECT 'contracts', request_id FROM switchgrid.contracts) x
GROUP BY t ORDER BY t;

-- the functions read the same rows without storing anything
SELECT count(*) AS same FROM (
    SELECT * FROM switchgrid_daily_energy(:'order_id', :'r65')
    INTERSECT SELECT prm, direction, day, wh FROM switchgrid.daily_energy) x;
SELECT count(*) AS same FROM (
    SELECT * FROM switchgrid_max_power(:'order_id', :'r66')
    INTERSECT SELECT prm, direction, day, va, reached_at FROM switchgrid.max_power) x;
SELECT count(*) AS same FROM (
    SELECT * FROM switchgrid_indexes(:'order_id', :'r64')
    INTERSECT SELECT prm, direction, read_at, cadran, day, total, calendar, calendar_label,
                     class_id, class_label, wh FROM switchgrid.indexes) x;
SELECT count(*) AS same FROM (
    SELECT * FROM switchgrid_billing(:'order_id', :'r67')
    INTERSECT SELECT prm, direction, class, period_start, period_end, wh, nature, nature_label,
                     class_label, calendar, calendar_label, reading_reason FROM switchgrid.billing) x;
SELECT prm, tariff, subscribed_kva, off_peak FROM switchgrid_contracts(:'order_id', :'c68');
-- a request of another type is refused before its data is fetched
SELECT sqlstate_of(format('SELECT * FROM switchgrid_daily_energy(%L, %L)', :'order_id', :'r66'));
SELECT sqlstate_of(format('SELECT * FROM switchgrid_contracts(%L, %L)', :'order_id', :'r65'));

-- an overlapping order updates rows in place: no duplicates, the newer
-- request_id on the days both cover
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-31 00:00 Europe/Paris', '2024-04-03 00:00 Europe/Paris')))
    ->> 'id' AS order2
\gset
SELECT switchgrid_wait(:'order2') ->> 'status' AS status;
SELECT day, wh, request_id = :'r65' AS first_order
FROM switchgrid.daily_energy WHERE prm = '09111642617347' AND day < '2024-10-01' ORDER BY day;
SELECT count(*) AS rows, count(DISTINCT (prm, direction, day)) AS keys FROM switchgrid.daily_energy;

-- a payload that does not have the shape its type promises: kept raw,
-- last_error says why, no row of it stored, the order finished
\! python3 test/sim/simctl.py fault '{"server": "data", "path": "/files/", "times": -1, "body": "{\"header\": {}, \"mesures\": \"none\"}"}'
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R64_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-05-01', '2024-05-03'),
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-05-01', '2024-05-03'),
    switchgrid_request('R66_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-05-01', '2024-05-03'),
    switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-05-01', '2024-05-03'),
    switchgrid_request('C68', ARRAY['09111642617347']),
    switchgrid_request('C68_ASYNC', ARRAY['09111642617347'])))
    ->> 'id' AS order3
\gset
-- (each also raises a WARNING, which names the request)
SET client_min_messages = error;
SELECT switchgrid_wait(:'order3') ->> 'status' AS status;
\! python3 test/sim/simctl.py clear-faults
SELECT type, rows_stored, fetched_at IS NOT NULL AS stored, next_fetch_at IS NULL AS not_retried,
       data->>'mesures' AS raw, regexp_replace(last_error, '[0-9a-f-]{36}', '<uuid>') AS last_error
FROM switchgrid.requests WHERE order_id = :'order3' ORDER BY position;
SELECT finished_at IS NOT NULL AS finished FROM switchgrid.orders WHERE order_id = :'order3';

-- all or nothing: a good first point does not go in without the bad second one
\! python3 test/sim/simctl.py fault '{"server": "data", "path": "/files/", "body": "{\"mesures\": [{\"idPrm\": \"09111642617347\", \"grandeur\": [{\"grandeurMetier\": \"CONS\", \"unite\": \"Wh\", \"points\": [{\"v\": \"100\", \"d\": \"2024-05-01\"}, {\"v\": \"12.5\", \"d\": \"2024-05-02\"}]}]}]}"}'
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-05-01', '2024-05-03')))
    ->> 'id' AS order4
\gset
SELECT switchgrid_wait(:'order4') ->> 'status' AS status;
SET client_min_messages = warning;
SELECT rows_stored, regexp_replace(last_error, '[0-9a-f-]{36}', '<uuid>') AS last_error
FROM switchgrid.requests WHERE order_id = :'order4';
SELECT count(*) AS may_rows FROM switchgrid.daily_energy WHERE day >= '2024-05-01' AND day < '2024-06-01';
-- the same payload read without storing it: the same error
\! python3 test/sim/simctl.py fault '{"server": "data", "path": "/files/", "body": "{\"mesures\": [{\"idPrm\": \"09111642617347\", \"grandeur\": [{\"grandeurMetier\": \"CONS\", \"unite\": \"MWh\", \"points\": [{\"v\": \"100\", \"d\": \"2024-05-01\"}]}]}]}"}'
SELECT sqlstate_of(format('SELECT * FROM switchgrid_daily_energy(%L, %L)', :'order4',
                          (SELECT request_id FROM switchgrid.requests WHERE order_id = :'order4')));
\! python3 test/sim/simctl.py clear-faults
-- a day with the shape of a date but none that exists is malformed too
\! python3 test/sim/simctl.py fault '{"server": "data", "path": "/files/", "body": "{\"mesures\": [{\"idPrm\": \"09111642617347\", \"grandeur\": [{\"grandeurMetier\": \"CONS\", \"unite\": \"Wh\", \"points\": [{\"v\": \"100\", \"d\": \"2024-02-30\"}]}]}]}"}'
SELECT sqlstate_of(format('SELECT * FROM switchgrid_daily_energy(%L, %L)', :'order4',
                          (SELECT request_id FROM switchgrid.requests WHERE order_id = :'order4')));
\! python3 test/sim/simctl.py clear-faults

-- the test environment: an Order placed with switchgrid.test_env stores
-- its rows in switchgrid_test, never over the real rows of the same meter
SET switchgrid.test_env = on;
SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-31 00:00 Europe/Paris', '2024-04-01 00:00 Europe/Paris'),
    switchgrid_request('C68', ARRAY['09111642617347'])))
    ->> 'id' AS order5
\gset
RESET switchgrid.test_env;
SELECT switchgrid_wait(:'order5') ->> 'status' AS status;
SELECT test_env FROM switchgrid.orders WHERE order_id = :'order5';
SELECT 'switchgrid_test' AS schema, count(*) FROM switchgrid_test.daily_energy
UNION ALL SELECT 'switchgrid_test contracts', count(*) FROM switchgrid_test.contracts
UNION ALL SELECT 'switchgrid, written by the test order', count(*) FROM switchgrid.daily_energy
    WHERE request_id IN (SELECT request_id FROM switchgrid.requests WHERE order_id = :'order5')
UNION ALL SELECT 'switchgrid contracts, written by the test order', count(*) FROM switchgrid.contracts
    WHERE request_id IN (SELECT request_id FROM switchgrid.requests WHERE order_id = :'order5');
RESET timezone;
RESET datestyle;
