--
-- data: switchgrid_data() returns the raw Enedis JSON behind a dataUrl
--
\! python3 test/sim/simctl.py reset

SELECT switchgrid_order(jsonb_build_array(
    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01 00:00 Europe/Paris', '2024-04-08 00:00 Europe/Paris'),
    switchgrid_request('R64_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01 00:00 Europe/Paris', '2024-04-08 00:00 Europe/Paris'),
    switchgrid_request('R66_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01 00:00 Europe/Paris', '2024-04-08 00:00 Europe/Paris'),
    switchgrid_request('C68', ARRAY['09111642617347']),
    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-04-01', '2024-04-02'),
    switchgrid_request('R65_SYNC', ARRAY['98765432109876']))) ->> 'id' AS order_id
\gset
SELECT await_order(:'order_id') AS o \gset
SELECT (:'o'::jsonb->'requests'->0->>'id') AS r65, (:'o'::jsonb->'requests'->1->>'id') AS r64,
       (:'o'::jsonb->'requests'->2->>'id') AS r66, (:'o'::jsonb->'requests'->3->>'id') AS c68,
       (:'o'::jsonb->'requests'->4->>'id') AS lc, (:'o'::jsonb->'requests'->5->>'id') AS failed
\gset

-- R65: daily energies in Wh, as strings, one point per day
SELECT d->'header'->>'codeFlux' AS flux, m->>'idPrm' AS prm, g->>'unite' AS unit,
       jsonb_array_length(g->'points') AS days, g->'points'->0->>'d' AS first_day
FROM switchgrid_data(:'order_id', :'r65') d,
     jsonb_array_elements(d->'mesures') m, jsonb_array_elements(m->'grandeur') g;

-- R64 indexes grow; daily energy(d) = index(d+1) - index(d)
WITH idx AS (
    SELECT (v->>'d')::date AS day, (v->>'v')::bigint AS wh
    FROM switchgrid_data(:'order_id', :'r64') d,
         jsonb_array_elements(d->'mesures') m, jsonb_array_elements(m->'contexte') c,
         jsonb_array_elements(c->'grandeur') g,
         jsonb_array_elements(g->'cadranTotalisateur'->'valeur') v),
energy AS (
    SELECT (p->>'d')::date AS day, (p->>'v')::bigint AS wh
    FROM switchgrid_data(:'order_id', :'r65') d,
         jsonb_array_elements(d->'mesures') m, jsonb_array_elements(m->'grandeur') g,
         jsonb_array_elements(g->'points') p)
SELECT count(*) AS days_compared, bool_and(e.wh = i2.wh - i1.wh) AS consistent
FROM energy e JOIN idx i1 ON i1.day = e.day JOIN idx i2 ON i2.day = e.day + 1;

-- R66: maximum powers in VA
SELECT g->>'grandeurPhysique' AS quantity, g->>'unite' AS unit, jsonb_array_length(g->'points') AS days
FROM switchgrid_data(:'order_id', :'r66') d,
     jsonb_array_elements(d->'mesures') m, jsonb_array_elements(m->'grandeur') g;

-- C68: contractual data
SELECT d->'point'->>'id' AS prm,
       d->'point'->'situationContractuelle'->'structureTarifaire'->'puissanceSouscriteMax'->>'unite' AS unit
FROM switchgrid_data(:'order_id', :'c68') d;

-- the data host never received the API token
\! python3 test/sim/simctl.py auth-seen --server data

-- a dataUrl may redirect, but only to https: where a redirect leads is not
-- checked against the loopback rule, so plain http is refused there
\! python3 test/sim/simctl.py fault '{"server": "data", "path": "/", "redirect": "http://127.0.0.1:9/elsewhere.json"}'
SELECT sqlstate_of(format('SELECT switchgrid_data(%L, %L)', :'order_id', :'r65'));
\! python3 test/sim/simctl.py clear-faults

-- a load curve has no dataUrl; a failed request has no data
SELECT sqlstate_of(format('SELECT switchgrid_data(%L, %L)', :'order_id', :'lc'));
SELECT sqlstate_of(format('SELECT switchgrid_data(%L, %L)', :'order_id', :'failed'));
SELECT sqlstate_of(format('SELECT switchgrid_data(%L, %L)', :'order_id', '00000000-0000-0000-0000-000000000000'));
SELECT switchgrid_data(NULL, :'r65');
