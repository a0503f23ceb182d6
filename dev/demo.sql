--
-- dev/demo.sql
--	  The sandbox walk-through run by "dev/sandbox demo": find a contract,
--	  collect consent, order a load curve, let the worker fetch it, read it.
--
-- Runs through psql from the root of the checkout, on a cluster whose
-- switchgrid.base_url points at the bundled simulator, with
-- SWITCHGRID_SIM_READY exported so that the simulated holder can sign.
-- It may run on a sandbox that someone uses: it creates objects only in its
-- own schema, switchgrid_demo, and drops nothing.
--
\set ECHO none
\set QUIET on
\pset footer off
SET timezone = 'Europe/Paris';
SET client_min_messages = warning;

\echo
\echo '== 1. Find the contract of Jeanne Dupond, 10 rue de la Paix, Paris'
\echo
SELECT contract_id, prm, holder, category, address->>'ligne4' AS street, address->>'ligne6' AS city
FROM switchgrid_search_contract('Jeanne Dupond', '10 rue de la Paix 75002 Paris');

\echo '== 2. Ask for her consent: an Ask with a page to sign'
\echo
SELECT switchgrid_ask(
           ARRAY(SELECT contract_id FROM switchgrid_search_contract('Jeanne Dupond', '10 rue de la Paix 75002 Paris')),
           '{"firstName": "Jeanne", "lastName": "Dupond", "email": "jeanne@example.org"}',
           purposes => ARRAY['SOLAR_INSTALLATION_SIZING'],
           consent_duration => '1 year') AS ask
\gset
SELECT :'ask'::jsonb->>'id' AS ask_id, :'ask'::jsonb->>'status' AS status,
       :'ask'::jsonb->'consentCollectionDetails'->>'userUrl' AS user_url
\gset
\echo 'Ask' :ask_id 'is' :status
\echo 'The holder signs at' :user_url
\echo

\echo '== 3. (The simulated holder signs the form.)'
\setenv USER_URL :user_url
\! python3 test/sim/simctl.py sign "$USER_URL"
SELECT a->>'status' AS status, a->>'acceptedAt' AS accepted_at, a->'consentIds' AS consent_ids
FROM switchgrid_ask_status(:'ask_id') AS a;

\echo '== 4. Order a week of load curve (with the DST change) and her contract data'
\echo '   (this session LISTENs on channel switchgrid: notifications from the worker show up below)'
\echo
LISTEN switchgrid;
SELECT switchgrid_order(jsonb_build_array(
           switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
                              '2024-03-25', '2024-04-01'),
           switchgrid_request('C68', ARRAY['09111642617347']))) AS ord
\gset
SELECT :'ord'::jsonb->>'id' AS order_id \gset
SELECT r->>'type' AS type, r->>'status' AS status, r->>'id' AS request_id
FROM jsonb_array_elements(:'ord'::jsonb->'requests') r;

\echo '== 5. Nobody polls: the background worker follows the order. What it waits on:'
\echo
SELECT kind, type, status, next_attempt_at - now() AS next_attempt_in
FROM switchgrid.pending ORDER BY kind;

\echo '== 6. switchgrid_wait() returns once the order is finished and stored'
\echo
SELECT switchgrid_wait(:'order_id', '2 minutes')->>'status' AS order_status;
SELECT type, status, rows_stored, data IS NOT NULL AS has_payload, fetched_at IS NOT NULL AS stored
FROM switchgrid.requests WHERE order_id = :'order_id' ORDER BY position;

\echo '== 7. The load curve, as stored in switchgrid.loadcurve (first hours)'
\echo
SELECT ts, power_w FROM switchgrid.loadcurve
WHERE prm = '09111642617347' AND ts >= '2024-03-31 00:00' ORDER BY ts LIMIT 6;

\echo '== 8. The same curve straight from the API, resampled to days'
\echo
SELECT ts::date AS day, round(power_w) AS mean_w
FROM switchgrid_loadcurve((:'ord'::jsonb->'requests'->0->>'id')::uuid, '1d') ORDER BY ts;

\echo '== 9. A materialized view of daily energy, for BI tools'
\echo '   (in schema switchgrid_demo, so that the demo never touches objects of yours;'
\echo '   a second run refreshes it)'
\echo
CREATE SCHEMA IF NOT EXISTS switchgrid_demo;
CREATE MATERIALIZED VIEW IF NOT EXISTS switchgrid_demo.daily_energy AS
SELECT prm, (ts AT TIME ZONE 'Europe/Paris')::date AS day,
       count(*) AS half_hours,
       round((sum(power_w) * 0.5 / 1000)::numeric, 2) AS kwh
FROM switchgrid.loadcurve
WHERE direction = 'CONSUMPTION'
GROUP BY 1, 2
WITH NO DATA;
REFRESH MATERIALIZED VIEW switchgrid_demo.daily_energy;
SELECT * FROM switchgrid_demo.daily_energy ORDER BY day;

\echo '(Sunday 31 March 2024 has 46 half-hours: clocks went forward.)'
\echo
\echo '== 10. Subscribed power, from the raw contract data (C68)'
\echo
SELECT data->'point'->'situationContractuelle'->'structureTarifaire'->'puissanceSouscriteMax' AS subscribed_power
FROM switchgrid.requests WHERE order_id = :'order_id' AND type = 'C68';
