--
-- security: the API token stays with superusers, and so does base_url
--
\! python3 test/sim/simctl.py reset

CREATE ROLE switchgrid_app LOGIN;
CREATE ROLE switchgrid_nobody LOGIN;
GRANT EXECUTE ON FUNCTION switchgrid_search_contract(text, text, text),
                          switchgrid_order_status(uuid) TO switchgrid_app;

SET ROLE switchgrid_nobody;
-- without a GRANT, nothing runs
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
RESET ROLE;

SET ROLE switchgrid_app;
-- with one, the function works: the server supplies the token
SELECT prm FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
-- but the token and its file cannot be read
SHOW switchgrid.api_token;
SELECT current_setting('switchgrid.api_token');
SHOW switchgrid.api_token_file;
SELECT count(*) FROM pg_settings WHERE name IN ('switchgrid.api_token', 'switchgrid.api_token_file');
SELECT count(*) FROM pg_file_settings WHERE name LIKE 'switchgrid.%';
-- nor changed, nor redirected elsewhere
SET switchgrid.api_token = 'stolen';
SET switchgrid.api_token_file = '/etc/passwd';
SET switchgrid.base_url = 'http://127.0.0.1:1/enedis/v2';
SELECT set_config('switchgrid.base_url', 'http://127.0.0.1:1/enedis/v2', false);
-- test_env is for everyone
SET switchgrid.test_env = on;
RESET switchgrid.test_env;
RESET ROLE;

-- an API that echoes the token back never gets it into a message
\! python3 test/sim/simctl.py fault '{"method": "GET", "path": "/order/", "status": 401, "body": "{\"message\": \"token sim-token is not valid\"}"}'
SET ROLE switchgrid_app;
SELECT switchgrid_order_status('00000000-0000-0000-0000-000000000001');
RESET ROLE;

-- a wrong token is refused with 28000 and hint, and the token is not shown
SET switchgrid.api_token = 'wrong-token';
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
RESET switchgrid.api_token;

-- a token that would break the HTTP header is refused
SET switchgrid.api_token = E'abc\r\nX-Injected: 1';
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
RESET switchgrid.api_token;

-- base_url must be an http(s) URL
SET switchgrid.base_url = 'ftp://example.org/';
SET switchgrid.base_url = 'https://example.org/v2?x=1';
-- plain http only to this machine, and no user information hiding the host
SET switchgrid.base_url = 'http://api.example.org/enedis/v2';
SET switchgrid.base_url = 'http://127.evil.example/enedis/v2';
SET switchgrid.base_url = 'http://127.0.0.1@evil.example/enedis/v2';
SET switchgrid.base_url = 'https://user:secret@example.org/enedis/v2';
SET switchgrid.base_url = 'http://localhost:8080/enedis/v2';
SET switchgrid.base_url = 'http://[::1]:8080/enedis/v2';
RESET switchgrid.base_url;

-- no token at all
SET switchgrid.api_token = '';
SET switchgrid.api_token_file = '';
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
SET switchgrid.api_token_file = '/nonexistent/token';
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');
RESET switchgrid.api_token_file;
RESET switchgrid.api_token;

\! python3 test/sim/simctl.py count --auth invalid
\! python3 test/sim/simctl.py clear-faults

-- what the role looks up is recorded, yet it cannot read the tables
SELECT order_id AS some_order FROM switchgrid.orders ORDER BY first_seen LIMIT 1 \gset
UPDATE switchgrid.orders SET polls = 0, raw = '{}' WHERE order_id = :'some_order';
SET ROLE switchgrid_app;
SELECT switchgrid_order_status(:'some_order') ->> 'status' AS status;
SELECT count(*) FROM switchgrid.orders;
SELECT switchgrid.record_order('{}');
RESET ROLE;
SELECT polls FROM switchgrid.orders WHERE order_id = :'some_order';

-- recording runs as the owner with a fixed search_path: objects the caller
-- plants in pg_temp (here a domain named "text" whose check would run
-- caller-written code) are never picked up with the owner's rights
SET ROLE switchgrid_app;
CREATE FUNCTION pg_temp.plant(v text) RETURNS boolean LANGUAGE sql
    AS $$ SELECT set_config('test.planted_ran_as', current_user, false) IS NOT NULL $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.plant(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.plant(VALUE::pg_catalog.text));
SET search_path = pg_temp, public;
SELECT switchgrid_order_status(:'some_order') ->> 'status' AS status;
SELECT coalesce(current_setting('test.planted_ran_as', true), '') AS planted_code_ran_as;
RESET search_path;
RESET ROLE;

DROP OWNED BY switchgrid_app;
DROP ROLE switchgrid_app;
DROP ROLE switchgrid_nobody;
