--
-- sync: what is stored (switchgrid.coverage), which consents are live
-- (switchgrid.consents), and ordering only what is missing (switchgrid_sync)
--
\! python3 test/sim/simctl.py reset
SET client_min_messages = warning;
SET timezone = 'Europe/Paris';
SET datestyle = 'ISO, YMD';

-- Meters of their own for this file: Alice and Nina (step PT10M then PT30M
-- on 2024-06-04) signed for a year, Bob signed for a year that is over,
-- Carl never asked for.
SELECT switchgrid_ask(
           ARRAY(SELECT c.contract_id
                 FROM (VALUES ('Alice Sync', '44444444444401'), ('Nina Changepas', '33333333333333')) AS m(name, prm),
                      LATERAL switchgrid_search_contract(m.name, prm => m.prm) AS c),
           '{"firstName": "Alice", "lastName": "Sync"}', consent_duration => '1 year') ->> 'id' AS ask_a
\gset
SELECT switchgrid_ask(
           ARRAY(SELECT contract_id FROM switchgrid_search_contract('Bob Sync', prm => '44444444444402')),
           '{"firstName": "Bob", "lastName": "Sync"}', consent_duration => '1 year') ->> 'id' AS ask_b
\gset
\setenv ASK_A :ask_a
\setenv ASK_B :ask_b
\! python3 test/sim/simctl.py accept "$ASK_A"
\! python3 test/sim/simctl.py accept "$ASK_B"
SELECT switchgrid_ask_status(:'ask_a') ->> 'status' AS a, switchgrid_ask_status(:'ask_b') ->> 'status' AS b;
-- Bob signed two years ago, as far as this database knows
UPDATE switchgrid.asks SET accepted_at = now() - interval '2 years' WHERE ask_id = :'ask_b';

-- consents: one row per meter and consent, the duration the Ask asked
-- for, when it ends and whether Orders can use it
SELECT prm, consent_id IS NOT NULL AS has_consent, ask_status, duration,
       expires_at = accepted_at + interval '1 year' AS a_year_after, state, test_env
FROM switchgrid.consents WHERE prm IN ('44444444444401', '44444444444402', '33333333333333')
ORDER BY prm;
-- cancelling an Ask revokes its consents
SELECT switchgrid_ask(
           ARRAY(SELECT contract_id FROM switchgrid_search_contract('Dora Sync', prm => '44444444444404')),
           '{"firstName": "Dora", "lastName": "Sync"}') ->> 'id' AS ask_d
\gset
SELECT prm, consent_id IS NOT NULL AS has_consent, ask_status, state FROM switchgrid.consents
WHERE prm = '44444444444404';
\setenv ASK_D :ask_d
\! python3 test/sim/simctl.py accept "$ASK_D"
SELECT switchgrid_ask_status(:'ask_d') ->> 'status' AS d;
SELECT switchgrid_cancel_ask(:'ask_d');
SELECT prm, consent_id IS NOT NULL AS has_consent, ask_status, accepted_at IS NOT NULL AS was_signed, state
FROM switchgrid.consents WHERE prm = '44444444444404';

-- coverage: a load-curve day is complete when every step of it is stored.
-- Alice: both DST days of 2024 (46 and 50 half-hours) and the morning of
-- 1 April only; Nina: 4 June 2024 from R63, which gives each point its own
-- step: PT10M until noon, PT30M after, and one point of the morning missing
-- from Enedis' file.
SELECT switchgrid_wait((switchgrid_order(jsonb_build_array(
    switchgrid_request('LOADCURVE', ARRAY['44444444444401'], 'CONSUMPTION', '2024-03-31 00:00 Europe/Paris', '2024-04-01 12:00 Europe/Paris'),
    switchgrid_request('LOADCURVE', ARRAY['44444444444401'], 'CONSUMPTION', '2024-10-27 00:00 Europe/Paris', '2024-10-28 00:00 Europe/Paris'),
    switchgrid_request('R63', ARRAY['33333333333333'], 'SOUTIRAGE', '2024-06-04 00:00 Europe/Paris', '2024-06-05 00:00 Europe/Paris'))
    ) ->> 'id')::uuid) ->> 'status' AS status;
SELECT prm, (ts AT TIME ZONE 'Europe/Paris')::date AS day, step_s, count(*) AS steps
FROM switchgrid.loadcurve WHERE prm IN ('44444444444401', '33333333333333')
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT * FROM switchgrid.coverage_days WHERE prm IN ('44444444444401', '33333333333333')
ORDER BY prm, day;
SELECT prm, dataset, direction, test_env, first_day, last_day, days, complete_days, missing
FROM switchgrid.coverage WHERE prm IN ('44444444444401', '33333333333333') ORDER BY prm;
-- A LOADCURVE of Nina's day (one period, PT30M) overwrites the points on
-- the hour and half-hour: the day is now made of overlapping PT10M and
-- PT30M steps that cover it whole, and is complete.
SELECT switchgrid_wait((switchgrid_order(
    switchgrid_request('LOADCURVE', ARRAY['33333333333333'], 'CONSUMPTION', '2024-06-04 00:00 Europe/Paris', '2024-06-05 00:00 Europe/Paris')
    ) ->> 'id')::uuid) ->> 'status' AS status;
SELECT step_s, count(*) AS steps FROM switchgrid.loadcurve WHERE prm = '33333333333333' GROUP BY 1 ORDER BY 1;
SELECT day, complete FROM switchgrid.coverage_days WHERE prm = '33333333333333';
-- a hole in Nina's afternoon: no longer complete
-- (the point taken out of its day's arrays in switchgrid.loadcurve_days)
UPDATE switchgrid.loadcurve_days d
SET ts = k.t, step_s = k.s, power_w = k.w, source = k.i
FROM (SELECT d2.day, array_agg(u.t ORDER BY u.t) AS t, array_agg(u.s ORDER BY u.t) AS s,
             array_agg(u.w ORDER BY u.t) AS w, array_agg(u.i ORDER BY u.t) AS i
      FROM switchgrid.loadcurve_days d2,
           unnest(d2.ts, d2.step_s, d2.power_w, d2.source) AS u(t, s, w, i)
      WHERE d2.prm = '33333333333333' AND u.t <> '2024-06-04 12:00 Europe/Paris'
      GROUP BY d2.day) k
WHERE d.prm = '33333333333333' AND d.day = k.day;
SELECT day, complete FROM switchgrid.coverage_days WHERE prm = '33333333333333';

-- the request types: how far back each goes, the longest span of one
-- request, the one switchgrid_sync() orders for each dataset
SELECT * FROM switchgrid.request_types();

-- switchgrid_order() refuses a period longer than the API keeps, before
-- anything is sent
\! python3 test/sim/simctl.py reset
SELECT sqlstate_of($$SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["44444444444401"], "since": "0024-01-01", "until": "2024-01-01"}]')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('[{"type": "R65_SYNC", "prms": ["44444444444401"], "since": "2020-01-01", "until": "2023-01-03"}]')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('[{"type": "R63_SYNC", "prms": ["44444444444401"], "since": "2024-01-01", "until": "2024-01-09"}]')$$);
\! python3 test/sim/simctl.py count

-- sync: bad input is refused before any HTTP call
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(NULL, ARRAY['loadcurve'], current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve'], current_date - 8, NULL, NULL)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], NULL, current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve'], NULL)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY[]::text[], ARRAY['loadcurve'], current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY[]::text[], current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurves'], current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['4444444444440'], ARRAY['loadcurve'], current_date - 8)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401', NULL], ARRAY['loadcurve'], current_date - 8)$$);
SELECT regexp_replace(sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve'], current_date - 8, current_date - 9)$$),
                      '\d{4}-\d\d-\d\d', 'YYYY-MM-DD', 'g') AS error;
SELECT regexp_replace(sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve'], current_date - 8, current_date - 8)$$),
                      '\d{4}-\d\d-\d\d', 'YYYY-MM-DD', 'g') AS error;
SELECT regexp_replace(sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve'], current_date)$$),
                      '\d{4}-\d\d-\d\d', 'YYYY-MM-DD', 'g') AS error;
SELECT regexp_replace(sqlstate_of($$SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['daily_energy', 'loadcurve'], current_date - 800)$$),
                      '\d{4}-\d\d-\d\d', 'YYYY-MM-DD', 'g') AS too_old;
\! python3 test/sim/simctl.py count

-- Alice's recent days: 10 to 7 days ago stored, 5 days ago half stored,
-- 3 days ago stored; daily energies of the last 10 days
SELECT switchgrid_wait((switchgrid_order(jsonb_build_array(
    switchgrid_request('LOADCURVE', ARRAY['44444444444401'], 'CONSUMPTION',
                       (current_date - 10)::timestamp AT TIME ZONE 'Europe/Paris', (current_date - 7)::timestamp AT TIME ZONE 'Europe/Paris'),
    switchgrid_request('LOADCURVE', ARRAY['44444444444401'], 'CONSUMPTION',
                       (current_date - 5)::timestamp AT TIME ZONE 'Europe/Paris', (current_date - 5)::timestamp AT TIME ZONE 'Europe/Paris' + interval '6 hours'),
    switchgrid_request('LOADCURVE', ARRAY['44444444444401'], 'CONSUMPTION',
                       (current_date - 3)::timestamp AT TIME ZONE 'Europe/Paris', (current_date - 2)::timestamp AT TIME ZONE 'Europe/Paris'),
    switchgrid_request('R65_SYNC', ARRAY['44444444444401'], 'SOUTIRAGE',
                       (current_date - 10)::timestamp AT TIME ZONE 'Europe/Paris', current_date::timestamp AT TIME ZONE 'Europe/Paris'))
    ) ->> 'id')::uuid) ->> 'status' AS status;
\! python3 test/sim/simctl.py reset

-- A dry run (the default) says what a run would order: only the gaps of
-- the last 10 days, the half-stored day with them; nothing for the daily
-- energies, all stored; the contract, never fetched.  Bob's consent is
-- over, Carl has none: skipped, with the reason.
SELECT prm, dataset, direction, since - current_date AS since, until - current_date AS until,
       order_id, regexp_replace(skipped, '\d{4}-\d\d-\d\d', 'YYYY-MM-DD') AS skipped
FROM switchgrid_sync(ARRAY['44444444444401', '44444444444402', '44444444444403'],
                     ARRAY['loadcurve', 'daily_energy', 'contracts'], current_date - 10)
ORDER BY prm, dataset, since;
-- and it made no call at all
\! python3 test/sim/simctl.py count

-- the real run: one Order for Alice, with three requests, and none for Bob
-- or Carl; an "until" past today stops at yesterday
CREATE TEMP TABLE run1 AS
SELECT * FROM switchgrid_sync(ARRAY['44444444444401', '44444444444402', '44444444444403'],
                              ARRAY['loadcurve', 'daily_energy', 'contracts'], current_date - 10,
                              current_date + 1, dry_run => false);
SELECT prm, dataset, direction, since - current_date AS since, until - current_date AS until,
       order_id IS NOT NULL AS ordered, regexp_replace(skipped, '\d{4}-\d\d-\d\d', 'YYYY-MM-DD') AS skipped
FROM run1 ORDER BY prm, dataset, since;
SELECT count(DISTINCT order_id) AS orders FROM run1;
\! python3 test/sim/simctl.py count --method POST --path /order
SELECT o.consent_id = k.consent_id AS with_alice_consent, r.type, r.prms, r.direction,
       (r.since AT TIME ZONE 'Europe/Paris')::date - current_date AS since,
       (r.until AT TIME ZONE 'Europe/Paris')::date - current_date AS until
FROM switchgrid.requests r JOIN switchgrid.orders o USING (order_id)
JOIN switchgrid.consents k ON k.prm = '44444444444401'
WHERE order_id = (SELECT DISTINCT order_id FROM run1 WHERE order_id IS NOT NULL)
ORDER BY r.position;

-- until its results are stored, a second run orders nothing twice
SELECT prm, dataset, since - current_date AS since, until - current_date AS until,
       regexp_replace(skipped, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>') AS skipped
FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve', 'contracts'], current_date - 10,
                     dry_run => false)
ORDER BY dataset, since;
SELECT switchgrid_wait(order_id) ->> 'status' AS status FROM run1 WHERE order_id IS NOT NULL LIMIT 1;
-- once stored, nothing is missing: an empty run
SELECT * FROM switchgrid_sync(ARRAY['44444444444401'], ARRAY['loadcurve', 'daily_energy', 'contracts'],
                              current_date - 10, dry_run => false);
\! python3 test/sim/simctl.py count --method POST --path /order
-- the last ten days are all complete now
SELECT dataset, direction, count(*) FILTER (WHERE complete) AS complete_days
FROM switchgrid.coverage_days
WHERE prm = '44444444444401' AND day >= current_date - 10
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT dataset, direction, last_day - current_date AS last_day
FROM switchgrid.coverage WHERE prm = '44444444444401' ORDER BY 1, 2;

-- A consent this database still takes for live, revoked elsewhere: the API
-- refuses that meter's Order, with a reason, and the run goes on.
UPDATE switchgrid.asks SET status = 'ACCEPTED' WHERE ask_id = :'ask_d';
\! python3 test/sim/simctl.py reset
SELECT prm, dataset, order_id IS NOT NULL AS ordered,
       regexp_replace(skipped, '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<uuid>') AS skipped
FROM switchgrid_sync(ARRAY['44444444444404', '33333333333333'], ARRAY['contracts'], current_date - 1,
                     dry_run => false)
ORDER BY prm;
\! python3 test/sim/simctl.py count --method POST --path /order

-- A consent of the test environment: its Order gives dummy data, stored in
-- schema switchgrid_test; coverage shows those rows apart (test_env), and
-- sync reads them for that consent.
SET switchgrid.test_env = on;
SELECT switchgrid_ask(
           ARRAY(SELECT contract_id FROM switchgrid_search_contract('Tess Sync', prm => '44444444444405')),
           '{"firstName": "Tess", "lastName": "Sync"}') ->> 'id' AS ask_t
\gset
RESET switchgrid.test_env;
\setenv ASK_T :ask_t
\! python3 test/sim/simctl.py accept "$ASK_T"
SELECT switchgrid_ask_status(:'ask_t') ->> 'status' AS t;
SELECT state, test_env FROM switchgrid.consents WHERE prm = '44444444444405';
CREATE TEMP TABLE run_t AS
SELECT * FROM switchgrid_sync(ARRAY['44444444444405'], ARRAY['daily_energy'], current_date - 3,
                              dry_run => false);
SELECT dataset, since - current_date AS since, until - current_date AS until, order_id IS NOT NULL AS ordered
FROM run_t;
SELECT switchgrid_wait(order_id) ->> 'status' AS status FROM run_t;
SELECT o.test_env FROM switchgrid.orders o JOIN run_t USING (order_id);
SELECT (SELECT count(*) FROM switchgrid.daily_energy WHERE prm = '44444444444405') AS real_rows,
       (SELECT count(*) FROM switchgrid_test.daily_energy WHERE prm = '44444444444405') AS test_rows;
SELECT dataset, test_env, complete_days, last_day - current_date AS last_day
FROM switchgrid.coverage WHERE prm = '44444444444405';
SELECT count(*) AS nothing_left
FROM switchgrid_sync(ARRAY['44444444444405'], ARRAY['daily_energy'], current_date - 3);

-- A role granted the views only reads them, a day of mixed steps included
-- (judged step by step), without reading the tables behind them.
CREATE ROLE switchgrid_sync_reader;
GRANT USAGE ON SCHEMA switchgrid TO switchgrid_sync_reader;
GRANT SELECT ON switchgrid.coverage, switchgrid.consents TO switchgrid_sync_reader;
SET ROLE switchgrid_sync_reader;
SELECT prm, dataset, complete_days, missing FROM switchgrid.coverage WHERE prm = '33333333333333';
SELECT count(*) AS consents FROM switchgrid.consents WHERE prm LIKE '4444444444440%';
SELECT count(*) FROM switchgrid.loadcurve;
RESET ROLE;
DROP OWNED BY switchgrid_sync_reader;
DROP ROLE switchgrid_sync_reader;
