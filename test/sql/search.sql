--
-- search: switchgrid_search_contract()
--
\! python3 test/sim/simctl.py reset

-- by name and address
SELECT prm, holder, category, address->>'ligne6' AS city
FROM switchgrid_search_contract('Dupond', '10 rue de la Paix 75002 Paris');

-- by name and PRM; the contract id is a uuid usable in switchgrid_ask()
SELECT contract_id IS NOT NULL AS has_id, prm, holder
FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347');

-- accents, "&" and an apostrophe survive URL encoding
SELECT prm, holder
FROM switchgrid_search_contract('Hélène Lefèvre & Fils', '3 place de l''Église 33000 Bordeaux');

-- nothing found is an empty result, not an error
SELECT count(*) FROM switchgrid_search_contract('Personne', '1 rue Inconnue 99999 Nulle Part');

\! python3 test/sim/simctl.py count --path /search_contract
-- ...all on one kept-alive connection
\! python3 test/sim/simctl.py connections --path /search_contract

-- bad input is refused before any HTTP call
\! python3 test/sim/simctl.py reset
SELECT * FROM switchgrid_search_contract('Du', '10 rue de la Paix 75002 Paris');
SELECT * FROM switchgrid_search_contract(NULL, '10 rue de la Paix 75002 Paris');
SELECT * FROM switchgrid_search_contract('   ', '10 rue de la Paix 75002 Paris');
SELECT * FROM switchgrid_search_contract('Dupond');
SELECT * FROM switchgrid_search_contract('Dupond', prm => '0911164261734');
SELECT * FROM switchgrid_search_contract('Dupond', prm => '0911164261734X');
SELECT * FROM switchgrid_search_contract('Dupond', '10 rue de la Paix Paris');
\! python3 test/sim/simctl.py count
