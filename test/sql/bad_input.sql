--
-- bad_input: every SQL function, given what it must refuse, fails with a
-- clear error and a fitting SQLSTATE before any HTTP call (the simulator's
-- request log stays empty), and quotes at most the start of a huge value
--
\! python3 test/sim/simctl.py reset
\set prm '''09111642617347'''
\set id '''00000000-0000-0000-0000-000000000001'''

-- NULLs
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract(NULL, '10 rue de la Paix 75002 Paris')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', NULL, NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(NULL::jsonb)$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(NULL::uuid[], '{"firstName": "A", "lastName": "B"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', ARRAY[NULL])$$);
SELECT sqlstate_of($$SELECT switchgrid_ask_status(NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_cancel_ask(NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_request(NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY[NULL])$$);
SELECT sqlstate_of($$SELECT switchgrid_order(NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_order_status(NULL)$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_loadcurve(NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_data(NULL, NULL)$$);
SELECT sqlstate_of($$SELECT switchgrid_wait(NULL)$$);
SELECT sqlstate_of(format($$SELECT switchgrid_wait(%L, NULL)$$, :id));
SELECT sqlstate_of($$SELECT switchgrid_webhook(NULL)$$);

-- empty strings
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('', '10 rue de la Paix 75002 Paris')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', '', '')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask('')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "", "lastName": "B"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', ARRAY[''])$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', consent_duration => '')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask_status('')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(status => '')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(prm => ' ')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY[''])$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68_ASYNC', ARRAY['09111642617347'], '')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('""')$$);
SELECT sqlstate_of(format($$SELECT * FROM switchgrid_loadcurve(%L, '')$$, :id));
SELECT sqlstate_of($$SELECT switchgrid_webhook('""')$$);

-- 13- and 15-digit PRMs, wherever a PRM goes
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', prm => '0911164261734')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', prm => '091116426173470')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY['0911164261734'])$$);
SELECT sqlstate_of($$SELECT switchgrid_order('{"type": "C68", "prms": ["091116426173470"]}')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(prm => '09111642617347,0911164261734')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask('{"electricityContracts": [{"prm": "091116426173470"}], "signer": {"firstName": "A", "lastName": "B"}}')$$);

-- the same PRM twice in one request: the API would refuse it
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY['09111642617347', '30001234567890', '09111642617347'])$$);
SELECT sqlstate_of($$SELECT switchgrid_order('[{"type": "R65", "prms": ["09111642617347"]}, {"type": "C68", "prms": ["30001234567890", "30001234567890"]}]')$$);

-- unknown types, directions, statuses, purposes, periods
SELECT sqlstate_of($$SELECT switchgrid_request('R99', ARRAY['09111642617347'])$$);
SELECT sqlstate_of($$SELECT switchgrid_request('loadcurve', ARRAY['09111642617347'])$$);
SELECT sqlstate_of($$SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'SOUTIRAGE')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('R65', ARRAY['09111642617347'], 'CONSUMPTION')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY['09111642617347'], 'INJECTION')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('{"type": "C68", "prms": ["09111642617347"], "dirección": "INJECTION"}')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(status => 'SIGNED,ACCEPTED')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(status => 'ACCEPTED,')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(prm => '09111642617347,,22222222222222')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', ARRAY['ENERGY_BROKERAGE', 'MINING'])$$);
SELECT sqlstate_of(format($$SELECT * FROM switchgrid_loadcurve(%L, '7min')$$, :id));

-- since >= until
SELECT sqlstate_of($$SELECT switchgrid_request('LOADCURVE', ARRAY['09111642617347'], since => '2024-02-01', until => '2024-01-01')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('R65', ARRAY['09111642617347'], since => '2024-01-01', until => '2024-01-01')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('{"type": "R64", "prms": ["09111642617347"], "since": "2024-01-02T00:00:00+01:00", "until": "2024-01-01T23:00:00Z"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('{"type": "R64", "prms": ["09111642617347"], "since": "2024-13-01"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_request('R65', ARRAY['09111642617347'], since => '-infinity')$$);
SELECT sqlstate_of($$SELECT switchgrid_order('[{"type": "LOADCURVE", "prms": ["09111642617347"], "direction": null}]')$$);
SELECT sqlstate_of(format($$SELECT switchgrid_wait(%L, '-1 second')$$, :id));

-- arrays of 100,000 elements
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY(SELECT gen_random_uuid() FROM generate_series(1, 100000)), '{"firstName": "A", "lastName": "B"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', ARRAY(SELECT 'DEMAND_RESPONSE' FROM generate_series(1, 100000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY(SELECT lpad(i::text, 14, '0') FROM generate_series(1, 100000) AS i))$$);
SELECT sqlstate_of($$SELECT switchgrid_order(jsonb_build_object('type', 'C68', 'prms', (SELECT jsonb_agg(lpad(i::text, 14, '0')) FROM generate_series(1, 5000) AS i)))$$);
SELECT sqlstate_of($$SELECT switchgrid_order((SELECT jsonb_agg(switchgrid_request('C68', ARRAY['09111642617347'])) FROM generate_series(1, 101)))$$);
SELECT sqlstate_of($$SELECT switchgrid_order((SELECT jsonb_agg(switchgrid_request('C68', ARRAY['09111642617347'])) FROM generate_series(1, 100000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(jsonb_build_object('electricityContracts', (SELECT jsonb_agg(gen_random_uuid()) FROM generate_series(1, 1001)), 'signer', '{"firstName": "A", "lastName": "B"}'::jsonb))$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY[['09111642617347'], ['30001234567890']])$$);

-- huge text: refused on its size, and quoted by its start only
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract(repeat('Dupond ', 1200000), '10 rue de la Paix 75002 Paris')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', repeat('x', 100000000))$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', prm => repeat('9', 100000000))$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', repeat('rue sans code ', 30))$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(prm => repeat('09111642617347,', 2000))$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(status => 'ACCEPTED,' || repeat('X', 1000))$$);
SELECT sqlstate_of($$SELECT switchgrid_request(repeat('R', 100000000))$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68_ASYNC', ARRAY['09111642617347'], repeat('S', 65))$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY[repeat('0', 1000000)])$$);
SELECT sqlstate_of($$SELECT switchgrid_order(jsonb_build_object('type', repeat('R', 500000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_order(jsonb_build_object('type', 'R65', 'prms', jsonb_build_array('09111642617347'), 'since', repeat('2', 500000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_order(jsonb_build_object(repeat('k', 500000), 1))$$);
SELECT sqlstate_of($$SELECT switchgrid_order(jsonb_build_object('type', 'C68', 'pad', repeat('x', 2000000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], jsonb_build_object('firstName', 'A', 'lastName', repeat('B', 2000000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', consent_duration => repeat('1 year', 1000))$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], jsonb_build_object('firstName', 'A', 'lastName', 'B', 'email', repeat('x', 900000)))$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(jsonb_build_object('electricityContracts', jsonb_build_array(repeat('f', 900000)), 'signer', '{"firstName": "A", "lastName": "B"}'::jsonb))$$);
SELECT sqlstate_of(format($$SELECT * FROM switchgrid_loadcurve(%L, repeat('P', 100000000))$$, :id));

-- "&", "#", "%00", "'", newlines and non-Latin text do not get past the checks
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract(E'Ab', E'1 rue d''Alésia\n#&%00')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract(E'Dupond & Fils', E'1 rue de l''Église & #2\n%00 Paris')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Δημήτρης', prm => '0911164261734%00')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(status => E'ACCEPTED\n&prm=1')$$);
SELECT sqlstate_of($$SELECT * FROM switchgrid_asks(prm => '09111642617347&status=ACCEPTED')$$);
SELECT sqlstate_of($$SELECT switchgrid_request(E'C68\n', ARRAY['09111642617347'])$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68#', ARRAY['09111642617347'])$$);
SELECT sqlstate_of($$SELECT switchgrid_request('C68', ARRAY['09111642617347#'])$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "Zoë", "lastName": "O''Brien", "genre": "Ж"}')$$);
SELECT sqlstate_of($$SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "李", "lastName": "小龍", "email": "李&#%00"}')$$);
SELECT sqlstate_of(format($$SELECT * FROM switchgrid_loadcurve(%L, '1h&format=csv')$$, :id));

-- webhooks: oversized and unknown payloads are refused, a forged one is only a hint
SELECT sqlstate_of($$SELECT switchgrid_webhook('{"event": {"_tag": "order.request_success"}}')$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook('{"event": {"_tag": "order.request_success", "orderId": "42; DROP TABLE x"}}')$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000002", "createdAt": "yesterday-ish"}}')$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook('{"event": {"_tag": "order.deleted", "orderId": "00000000-0000-0000-0000-000000000002"}}')$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook('[{"event": {"_tag": "ask.accepted"}}]')$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', 'ask.accepted', 'askId', gen_random_uuid()), 'pad', repeat('x', 100000)))$$);
SELECT count(*) AS oversized_kept FROM switchgrid.webhook_events WHERE pg_column_size(payload) > 65536;
-- the size is checked before anything is looked up inside; bad values are quoted by their start only
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', repeat('x', 100000))))$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', repeat('order.deleted ', 100))))$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', 'order.request_failed', 'orderId', repeat('0', 1000))))$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', 'ask.accepted', 'askId', gen_random_uuid(), 'createdAt', repeat('2024', 1000))))$$);
SELECT sqlstate_of($$SELECT switchgrid_webhook('{"event": {"orderId": "00000000-0000-0000-0000-000000000002"}}')$$);
-- a forged event for an Order nobody knows is recorded, and costs no call here
SELECT sqlstate_of($$SELECT switchgrid_webhook(jsonb_build_object('event', jsonb_build_object('_tag', 'order.request_success', 'orderId', gen_random_uuid(), 'requestType', 'C68')))$$);
SELECT count(*) AS forged_kept FROM switchgrid.webhook_events WHERE request_type = 'C68';

-- none of the above reached the API
\! python3 test/sim/simctl.py count

-- These characters are data, not bad input: they reach the API intact.
SELECT holder FROM switchgrid_search_contract(E'Zoë O''Brien & Fils #2 %00 李\n', prm => '31415926535897');
\! python3 test/sim/simctl.py count --path /search_contract

-- A dataUrl from the API obeys the rule of switchgrid.base_url: https, or
-- plain http to this machine; anything else is never fetched.
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "body": "{\"id\": \"00000000-0000-0000-0000-000000000001\", \"status\": \"SUCCESS\", \"requests\": [{\"id\": \"00000000-0000-0000-0000-000000000003\", \"type\": \"C68\", \"status\": \"SUCCESS\", \"dataUrl\": \"http://example.com/files/x.json\"}]}"}'
SELECT sqlstate_of(format($$SELECT switchgrid_data(%L, '00000000-0000-0000-0000-000000000003')$$, :id));
\! python3 test/sim/simctl.py clear-faults
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "body": "{\"id\": \"00000000-0000-0000-0000-000000000001\", \"status\": \"SUCCESS\", \"requests\": [{\"id\": \"00000000-0000-0000-0000-000000000003\", \"type\": \"C68\", \"status\": \"SUCCESS\", \"dataUrl\": \"file:///etc/passwd\"}]}"}'
SELECT sqlstate_of(format($$SELECT switchgrid_data(%L, '00000000-0000-0000-0000-000000000003')$$, :id));
\! python3 test/sim/simctl.py count --server data
\! python3 test/sim/simctl.py reset
