--
-- order: building requests and placing Orders
--
\! python3 test/sim/simctl.py reset

-- switchgrid_request() builds one request object and checks it; no HTTP
SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
                          '2024-03-31 00:00 Europe/Paris', '2024-04-01 00:00 Europe/Paris');
SELECT switchgrid_request('C68', ARRAY['09111642617347']);
SELECT switchgrid_request('R65_SYNC', ARRAY['30001234567890'], 'INJECTION', '2024-06-01', '2024-07-01');
SELECT switchgrid_request('LOADCURVE', ARRAY['12345678901234'], retry_after_activation => true);
SELECT switchgrid_request('LOADCURVE');

-- every mistake is caught locally
SELECT switchgrid_request(NULL);
SELECT switchgrid_request('R99', ARRAY['09111642617347']);
SELECT switchgrid_request('LOADCURVE', ARRAY['9111642617347']);
SELECT switchgrid_request('LOADCURVE', ARRAY['0911164261734a']);
SELECT switchgrid_request('LOADCURVE', ARRAY[NULL]);
SELECT switchgrid_request('LOADCURVE', ARRAY[]::text[]);
SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'SOUTIRAGE');
SELECT switchgrid_request('R65', ARRAY['09111642617347'], 'CONSUMPTION');
SELECT switchgrid_request('C68', ARRAY['09111642617347'], 'SOUTIRAGE');
SELECT switchgrid_request('C68', ARRAY['09111642617347'], since => '2024-01-01');
SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], since => '2024-02-01', until => '2024-01-01');
SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], since => '2024-01-01', until => '2024-01-01');
SELECT switchgrid_request('R65', ARRAY['09111642617347'], retry_after_activation => true);

-- switchgrid_order() checks each request object the same way
SELECT switchgrid_order('[]');
SELECT switchgrid_order('42');
SELECT switchgrid_order('[42]');
SELECT switchgrid_order('[{"prms": ["09111642617347"]}]');
SELECT switchgrid_order('[{"type": "C68", "prms": ["09111642617347"]}, {"type": "LOADCURVE"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "sinse": "2024-01-01"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": "09111642617347"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "since": "01/02/2024"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "since": "2024-01-01T25:00"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "since": "2024-01-01T00:00:00[Mars/Olympus]"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "since": "2024-01-02T00:00:00+01:00", "until": "2024-01-01T23:00:00Z"}]');
SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "enedisRetryAfterLoadcurveActivation": "yes"}]');
SELECT switchgrid_order(NULL);
\! python3 test/sim/simctl.py count

-- the since/until forms of the guide are all accepted
SELECT v, sqlstate_of(format('SELECT switchgrid_order(%L, %L)',
           jsonb_build_array(jsonb_build_object('type', 'R65_SYNC', 'since', v, 'until', '2025-06-01')),
           gen_random_uuid())) AS outcome
FROM unnest(ARRAY['2024-12-10', '2024-12-10T00:00:00', '2024-12-10T12:00:00Z',
                  '2024-12-10T00:00:00+01:00', '2024-12-10T00:00:00[Europe/Paris]',
                  '2024-12-10T00:00:00[CET]', '2024-12-10T00:00:00.250Z']) AS v;
-- (each of those reached the API, which refused the made-up consent)
\! python3 test/sim/simctl.py count --method POST --path /order

-- a real order: a load curve and daily energies for a signed meter
\! python3 test/sim/simctl.py reset
SELECT switchgrid_order(jsonb_build_array(
           switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
                              '2024-03-31 00:00 Europe/Paris', '2024-04-01 00:00 Europe/Paris'),
           switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE',
                              '2024-03-01 00:00 Europe/Paris', '2024-04-01 00:00 Europe/Paris'))) AS o
\gset
SELECT o->>'status' AS status, jsonb_array_length(o->'requests') AS requests,
       (SELECT bool_and(r ? 'id') FROM jsonb_array_elements(o->'requests') r) AS ids
FROM (SELECT :'o'::jsonb AS o) s;
SELECT r->>'type' AS type, r->>'status' AS status, r->>'dataUrl' IS NOT NULL AS has_data_url
FROM jsonb_array_elements(await_order((:'o'::jsonb->>'id')::uuid)->'requests') r
ORDER BY 1;
-- one POST, never repeated
\! python3 test/sim/simctl.py count --method POST --path /order

-- an order by consent id: the consent's PRM is implied
SELECT a->'consentIds'->>'09111642617347' AS consent
FROM fixture, switchgrid_ask_status(fixture.ask_id) a
\gset
SELECT r->>'type' AS type, r->'prms' AS prms, r->>'status' AS status
FROM jsonb_array_elements(await_order((switchgrid_order('{"type": "C68"}', :'consent')->>'id')::uuid)->'requests') r;

-- Enedis failures come back as FAILED requests with their message
SELECT r->>'status' AS status, r->>'errorMessage' AS error
FROM jsonb_array_elements(await_order((switchgrid_order(
         switchgrid_request('R65_SYNC', ARRAY['98765432109876'], since => '2024-03-01', until => '2024-03-08'))->>'id')::uuid)->'requests') r;

-- an unknown order
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000000');

-- a look-up whose answer is the one recorded writes nothing: the rows keep
-- their version (xmin), and polls and updated_at count only answers that
-- changed something
SELECT order_id AS done_order, xmin::text AS order_xmin, polls AS order_polls,
       (SELECT string_agg(xmin::text, ',' ORDER BY request_id) FROM switchgrid.requests r
        WHERE r.order_id = o.order_id) AS request_xmins
FROM switchgrid.orders o WHERE finished_at IS NOT NULL ORDER BY first_seen DESC LIMIT 1
\gset
SELECT switchgrid_order_status(:'done_order') ->> 'status' AS status;
SELECT switchgrid_order_status(:'done_order') ->> 'status' AS status;
SELECT xmin::text = :'order_xmin' AS same_order_version, polls = :order_polls AS same_polls,
       (SELECT string_agg(xmin::text, ',' ORDER BY request_id) FROM switchgrid.requests r
        WHERE r.order_id = o.order_id) = :'request_xmins' AS same_request_versions
FROM switchgrid.orders o WHERE order_id = :'done_order';
-- an answer that differs from the one recorded is written
UPDATE switchgrid.orders SET raw = raw - 'status' WHERE order_id = :'done_order';
SELECT xmin::text AS order_xmin FROM switchgrid.orders WHERE order_id = :'done_order' \gset
SELECT switchgrid_order_status(:'done_order') ->> 'status' AS status;
SELECT xmin::text <> :'order_xmin' AS new_order_version, raw ? 'status' AS recorded
FROM switchgrid.orders WHERE order_id = :'done_order';
