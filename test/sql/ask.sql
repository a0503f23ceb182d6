--
-- ask: consent requests (Asks)
--
\! python3 test/sim/simctl.py reset

-- an Ask for a contract found by search, built from its parts
SELECT switchgrid_ask(
           ARRAY[(SELECT contract_id FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347'))],
           '{"firstName": "Jeanne", "lastName": "Dupond", "email": "jeanne@example.org"}',
           purposes => ARRAY['SOLAR_INSTALLATION_SIZING'],
           consent_duration => '3 years') AS ask
\gset
SELECT a->>'status' AS status,
       a->'consentCollectionDetails'->>'service' AS service,
       a->'consentCollectionDetails'->>'userUrl' LIKE 'http%/c/%' AS has_user_url,
       a->'createArgs'->'purposes' AS purposes,
       a->'createArgs'->>'consentDuration' AS duration
FROM (SELECT :'ask'::jsonb AS a) s;

-- the holder signs on the web page at userUrl
SELECT :'ask'::jsonb->'consentCollectionDetails'->>'userUrl' AS user_url,
       :'ask'::jsonb->>'id' AS ask_id
\gset
SELECT switchgrid_ask_status(:'ask_id')->>'status' AS before_signature;
\setenv USER_URL :user_url
\! python3 test/sim/simctl.py sign "$USER_URL"
SELECT a->>'status' AS after_signature, a->>'acceptedAt' IS NOT NULL AS has_accepted_at,
       jsonb_object_keys(a->'consentIds') AS consent_prm
FROM switchgrid_ask_status(:'ask_id') AS a;

-- an Ask from a body the caller built
SELECT switchgrid_ask('{"electricityContracts": [{"prm": "25946599093143",
                         "heldBy": {"genre": "F", "firstName": "Hélène", "lastName": "Lefèvre"},
                         "address": {"street": "3 place de l''Église", "postalCode": "33000",
                                     "city": "Bordeaux", "country": "France"}}],
                       "signer": {"firstName": "Hélène", "lastName": "Lefèvre"}}') ->> 'status' AS status;

-- switchgrid.test_env sends "switchgrid-test-env: true" with the Ask
SET switchgrid.test_env = on;
SELECT switchgrid_ask(
           ARRAY[(SELECT contract_id FROM switchgrid_search_contract('Hélène Lefèvre', prm => '25946599093143'))],
           '{"firstName": "Hélène", "lastName": "Lefèvre"}') ->> 'status' AS status;
RESET switchgrid.test_env;
\! python3 test/sim/simctl.py count --method POST --path /ask --test-env

-- listing follows the API's paging: with 130 more, the 134 Asks take two pages (100 + 34)
SELECT count(*) FROM generate_series(1, 130) AS i,
    LATERAL switchgrid_ask(
        ARRAY[(SELECT contract_id FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347'))],
        jsonb_build_object('firstName', 'Jeanne', 'lastName', 'Dupond',
                           'email', 'jeanne' || i || '@example.org')) AS a;
SELECT count(*) AS asks, count(DISTINCT ask_id) AS distinct_asks,
       bool_and(created_at IS NOT NULL) AS all_dated
FROM switchgrid_asks();
\! python3 test/sim/simctl.py count --method GET --path ^/enedis/v2/ask$
-- a server may serve fewer than the 100 asked for: paging ends on its total, not on a short page
\! python3 test/sim/simctl.py reset
\! python3 test/sim/simctl.py settings '{"max_page_size": 7}'
SELECT count(*) AS asks, count(DISTINCT ask_id) AS distinct_asks FROM switchgrid_asks();
\! python3 test/sim/simctl.py count --method GET --path ^/enedis/v2/ask$
\! python3 test/sim/simctl.py reset
SELECT status, count(*) FROM switchgrid_asks() GROUP BY status ORDER BY status;
SELECT count(*) AS accepted, bool_and(accepted_at IS NOT NULL) AS dated,
       bool_and(consent_ids ? '09111642617347') AS consent_listed
FROM switchgrid_asks(status => 'ACCEPTED');
SELECT count(*) AS not_accepted FROM switchgrid_asks(status => '!ACCEPTED');
SELECT count(*) AS for_prm, bool_and(prms = ARRAY['25946599093143']) AS prms_ok
FROM switchgrid_asks(prm => '25946599093143');

-- cancelling an Ask revokes it
SELECT switchgrid_cancel_ask(:'ask_id');
SELECT sqlstate_of(format('SELECT switchgrid_ask_status(%L)', :'ask_id'));

-- bad input is refused before any HTTP call
\! python3 test/sim/simctl.py reset
SELECT switchgrid_ask(ARRAY[]::uuid[], '{"firstName": "A", "lastName": "B"}');
SELECT switchgrid_ask(NULL::uuid[], '{"firstName": "A", "lastName": "B"}');
SELECT switchgrid_ask(ARRAY[NULL]::uuid[], '{"firstName": "A", "lastName": "B"}');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A"}');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '"signer"');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B", "genre": "X"}');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', ARRAY['WORLD_DOMINATION']);
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', consent_duration => '3 decades');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', consent_duration => '21 years');
SELECT switchgrid_ask(ARRAY[gen_random_uuid()], '{"firstName": "A", "lastName": "B"}', scopes => '{"id": "x"}');
SELECT switchgrid_ask('{"signer": {"firstName": "A", "lastName": "B"}}');
SELECT switchgrid_ask('{"electricityContracts": ["not-a-uuid"], "signer": {"firstName": "A", "lastName": "B"}}');
SELECT switchgrid_ask('{"electricityContracts": [{"prm": "123"}], "signer": {"firstName": "A", "lastName": "B"}}');
SELECT switchgrid_ask('[]');
SELECT * FROM switchgrid_asks(status => 'SIGNED');
SELECT * FROM switchgrid_asks(prm => '!123');
SELECT switchgrid_ask_status(NULL);
\! python3 test/sim/simctl.py count
