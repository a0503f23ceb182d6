--
-- errors: how API and network failures surface, each with its SQLSTATE
--
\! python3 test/sim/simctl.py reset
SET switchgrid.max_retries = 3;

-- a GET is retried on 503 and succeeds on the third try
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/search_contract", "status": 503, "times": 2}'
SELECT count(*) FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
\! python3 test/sim/simctl.py count --path /search_contract

-- 429 with Retry-After is waited for, then retried
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/search_contract", "status": 429, "retry_after": 1, "times": 1}'
SELECT count(*) FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
\! python3 test/sim/simctl.py count --path /search_contract

-- when retries run out, the last failure is reported
\! python3 test/sim/simctl.py reset
SET switchgrid.max_retries = 1;
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/search_contract", "status": 503, "times": 5, "body": "{\"message\": \"maintenance\"}"}'
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
\! python3 test/sim/simctl.py count --path /search_contract
\! python3 test/sim/simctl.py clear-faults
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/search_contract", "status": 429, "times": 5}'
SELECT sqlstate_of($$SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris')$$);
RESET switchgrid.max_retries;

-- a POST is never sent twice, even on 503
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py fault '{"method": "POST", "path": "/order", "status": 503, "times": 1}'
SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347']));
\! python3 test/sim/simctl.py count --method POST --path /order

-- each HTTP status has its SQLSTATE
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "status": 400, "body": "{\"error\": \"Bad Request\", \"message\": \"invalid order id\"}"}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "status": 403}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "status": 500, "times": 1, "body": "<html>Internal error</html>"}'
SET switchgrid.max_retries = 0;
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "status": 502, "times": 1}'
SELECT sqlstate_of($$SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')$$);
RESET switchgrid.max_retries;

-- bodies that are not what was announced
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "malformed": true}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
-- a 2xx body that is not JSON and quotes the token: the parser's detail
-- names the status and path, and never the token
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "body": "{\"id\" \"sim-token\"}", "times": 1}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
-- a well-formed answer about another Order or Ask is not recorded as that one
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "body": "{\"id\": \"00000000-0000-0000-0000-000000000009\", \"status\": \"PENDING_REQUESTS\", \"requests\": []}", "times": 1}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/ask/", "body": "{\"id\": \"00000000-0000-0000-0000-000000000009\", \"status\": \"ACCEPTED\"}", "times": 1}'
SELECT switchgrid_ask_status('00000000-0000-0000-0000-000000000001');
SELECT (SELECT count(*) FROM switchgrid.orders WHERE order_id = '00000000-0000-0000-0000-000000000009') AS orders_kept,
       (SELECT count(*) FROM switchgrid.asks WHERE ask_id = '00000000-0000-0000-0000-000000000009') AS asks_kept;
SET switchgrid.max_retries = 0;
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "truncate": true}'
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
RESET switchgrid.max_retries;

-- a response over switchgrid.max_response_size is cut off
SET switchgrid.max_response_size = '1kB';
SELECT count(*) FROM switchgrid_asks();
RESET switchgrid.max_response_size;

-- a server that does not answer in time
SET switchgrid.timeout = '300ms';
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "delay_ms": 5000, "times": 4}'
SET switchgrid.max_retries = 0;
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
RESET switchgrid.timeout;
RESET switchgrid.max_retries;
\! python3 test/sim/simctl.py clear-faults

-- statement_timeout interrupts a request hung in the server
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "delay_ms": 20000}'
SET statement_timeout = '300ms';
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
RESET statement_timeout;
\! python3 test/sim/simctl.py clear-faults

-- nothing listening
SET switchgrid.base_url = 'http://127.0.0.1:1/enedis/v2';
SELECT split_part(sqlstate_of($$SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001')$$),
                  E'\n', 1) AS error;
RESET switchgrid.base_url;

-- the setting ranges are enforced
SET switchgrid.timeout = '10ms';
SET switchgrid.max_retries = 11;
SET switchgrid.connect_timeout = '-1';
