# Orders that finish by themselves: the worker waits for CREATE EXTENSION,
# polls, downloads load curves into switchgrid.loadcurve with the simulator's
# exact values, tells listeners, reloads its settings, wakes on webhooks and
# stops at once on SIGTERM.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;
use Time::HiRes qw(time);

my $sim = start_simulator(args => [ '--complete-ms', 400, '--long-complete-ms', 800 ]);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '2s');
$node->start;

# Before CREATE EXTENSION the worker waits, and says so once.
ok( poll_until(
		sub { slurp_file($node->logfile) =~ /is not installed in database "postgres"/ },
		undef, 'the worker to say it waits'),
	'worker waits for the extension');
my $waits = () = slurp_file($node->logfile) =~ /is not installed in database/g;
is($waits, 1, 'and says so once');

$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
ok( poll_until(
		sub { slurp_file($node->logfile) =~ /extension found; starting/ },
		undef, 'the worker to notice the extension'),
	'worker starts once the extension exists');

# a signed consent for the catalogue's first two meters
my $ask_id = $node->safe_psql('postgres', q{
	SELECT switchgrid_ask(ARRAY(
	    SELECT c.contract_id FROM (VALUES ('Jeanne Dupond', '09111642617347'),
	                                      ('SARL Les Tanneurs', '30001234567890')) m(n, p),
	         LATERAL switchgrid_search_contract(m.n, prm => m.p) c),
	    '{"firstName": "Jeanne", "lastName": "Dupond"}') ->> 'id'});

# A listener sees the Ask accepted, noticed by the worker's own polling.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN switchgrid');
is(sim_control('POST', "/asks/$ask_id/accept")->{status}, 200, 'holder signs');
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT status FROM switchgrid.asks WHERE ask_id = '$ask_id'") eq 'ACCEPTED';
		},
		undef, 'the worker to record the signature'),
	'worker records the signed Ask');

# An order for the autumn DST day (50 half-hours) completes by itself.
my $order_id = $node->safe_psql('postgres', q{
	SET timezone = 'Europe/Paris';
	SELECT switchgrid_order(jsonb_build_array(
	    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-10-27', '2024-10-28'),
	    switchgrid_request('C68', ARRAY['09111642617347']))) ->> 'id'});
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$order_id'") eq 't';
		},
		undef, 'the order to finish'),
	'order finishes without anyone polling');

my $rows = $node->safe_psql('postgres', q{
	SELECT count(*), count(DISTINCT ts) FROM switchgrid.loadcurve
	WHERE prm = '09111642617347' AND direction = 'CONSUMPTION'
	  AND ts >= '2024-10-27 00:00 Europe/Paris' AND ts < '2024-10-28 00:00 Europe/Paris'});
is($rows, '50|50', 'the DST day has 50 half-hour points');

# the same values as the simulator computes
my $expected = sim_control('GET',
	'/expected/loadcurve?prm=09111642617347&direction=CONSUMPTION'
	  . '&since=2024-10-26T22:00:00Z&until=2024-10-27T23:00:00Z')->{json};
my $got = $node->safe_psql('postgres', q{
	SELECT string_agg(coalesce(power_w::bigint::text, 'null'), ',' ORDER BY ts)
	FROM switchgrid.loadcurve
	WHERE prm = '09111642617347' AND direction = 'CONSUMPTION'
	  AND ts >= '2024-10-26 22:00Z' AND ts < '2024-10-27 23:00Z'});
is($got, join(',', map { defined $_ ? $_ : 'null' } @{ $expected->{values} }),
	'every value equals the simulator\'s');

my $c68 = $node->safe_psql('postgres', qq{
	SELECT data->'point'->>'id' FROM switchgrid.requests
	WHERE order_id = '$order_id' AND type = 'C68'});
is($c68, '09111642617347', 'contract data stored as jsonb');

# what the listener heard
my $heard = $listener->query_safe('SELECT 1');
$heard .= $listener->{stderr} // '';
like($heard, qr/"event": "ask\.accepted"/, 'NOTIFY for the accepted Ask');
like($heard, qr/^(?=.*"event": "request\.finished")(?=.*"type": "LOADCURVE").*$/m,
	'NOTIFY for the finished request');
like($heard, qr/"event": "order\.finished".*\Q$order_id\E/, 'NOTIFY for the finished order');

# Many orders at once: each completes, each result stored exactly once.
sim_control('POST', '/reset');
my @orders = split /\n/, $node->safe_psql('postgres', q{
	SELECT switchgrid_order(jsonb_build_array(
	    switchgrid_request('LOADCURVE', ARRAY['30001234567890'], 'CONSUMPTION',
	                       d, d + interval '1 day'),
	    switchgrid_request('R65_SYNC', ARRAY['30001234567890'], 'SOUTIRAGE',
	                       d, d + interval '7 days'))) ->> 'id'
	FROM generate_series(timestamptz '2024-02-01 00:00 Europe/Paris',
	                     timestamptz '2024-02-20 00:00 Europe/Paris', interval '1 day') d});
is(scalar @orders, 20, '20 orders placed');
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				'SELECT count(*) FROM switchgrid.orders WHERE finished_at IS NULL') eq '0';
		},
		60, 'every order to finish'),
	'all orders finish');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE fetches = 1), count(*) FROM switchgrid.requests r
		JOIN switchgrid.orders o USING (order_id)
		WHERE o.order_id = ANY (ARRAY[} . join(',', map { "'$_'::uuid" } @orders) . q{])}),
	'40|40', 'each result stored once');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM switchgrid.loadcurve
		WHERE prm = '30001234567890' AND ts >= '2024-02-01 00:00 Europe/Paris'
		  AND ts < '2024-02-21 00:00 Europe/Paris'}),
	20 * 144, 'a PT10M meter: 144 points a day, no duplicates');
my $downloads = sim_control('GET', '/log')->{json};
my %per_request;
$per_request{$_}++ foreach map { $_->{path} =~ m{/request/([^/]+)/data} ? $1 : () } @$downloads;
is(scalar(grep { $_ != 1 } values %per_request), 0, 'each load curve downloaded once');
is(scalar(keys %per_request), 20, 'and all 20 were');

# Settings reload with SIGHUP.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET switchgrid.poll_interval = '1h'; SELECT pg_reload_conf()");
ok( poll_until(
		sub { slurp_file($node->logfile) =~ /settings reloaded: poll_interval=3600000 ms/ },
		undef, 'the worker to reload'),
	'worker reloads its settings');

# A webhook wakes the worker long before its next poll.
# (placed with its next poll an hour away, in the same transaction)
my $slow = (split /\n/, $node->safe_psql('postgres', q{
	SELECT set_config('test.slow', switchgrid_order(
	    switchgrid_request('C68', ARRAY['30001234567890'])) ->> 'id', false);
	UPDATE switchgrid.orders SET next_poll_at = now() + interval '1 hour'
	WHERE order_id = current_setting('test.slow')::uuid
	RETURNING order_id}))[-1];
my $request = $node->safe_psql('postgres',
	"SELECT request_id FROM switchgrid.requests WHERE order_id = '$slow'");
# the simulator finishes the request in under a second; the worker would look in an hour
ok( poll_until(
		sub {
			my $res = HTTP::Tiny->new->get("$sim->{base_url}/order/$slow",
				{ headers => { Authorization => "Bearer $sim->{token}" } });
			$res->{success} && decode_json($res->{content})->{status} eq 'SUCCESS';
		},
		undef, 'the simulated request to be done'),
	'the simulator has finished the request');
is($node->safe_psql('postgres',
		"SELECT finished_at IS NULL FROM switchgrid.orders WHERE order_id = '$slow'"),
	't', 'the order waits for its next poll');
$node->safe_psql('postgres', qq{
	SELECT switchgrid_webhook('{"event": {"_tag": "order.request_success",
	    "createdAt": "2024-09-17T10:21:32.262Z", "organizationId": "a0efdd19-de68-480d-a92f-458ffd98f5c2",
	    "orderId": "$slow", "requestType": "C68", "requestId": "$request"}}')});
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$slow'") eq 't';
		},
		30, 'the webhook to take effect'),
	'a webhook makes the worker poll at once');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM switchgrid.webhook_events WHERE order_id = '$slow'"),
	'1', 'the event is recorded');

# An Ask created in the test environment is polled in the test environment.
my $test_ask = $node->safe_psql('postgres', q{
	SET switchgrid.test_env = on;
	SELECT switchgrid_ask(ARRAY(SELECT contract_id
	    FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347')),
	    '{"firstName": "Jeanne", "lastName": "Dupond"}') ->> 'id'});
$node->safe_psql('postgres',
	"UPDATE switchgrid.asks SET next_poll_at = now() WHERE ask_id = '$test_ask'");
$node->safe_psql('postgres', "SELECT switchgrid_webhook('{\"event\": {\"_tag\": \"ask.accepted\", \"askId\": \"$test_ask\"}}')");
ok( poll_until(
		sub {
			grep { $_->{method} eq 'GET' && $_->{path} =~ /\Q$test_ask\E$/ && $_->{test_env} }
			  @{ sim_control('GET', '/log')->{json} };
		},
		30, 'the worker to poll the test Ask'),
	'the worker polls a test-environment Ask with the test-environment header');

# An order placed in a transaction that rolls back is billed all the same:
# the worker records it anyway.  Likewise under a rolled-back savepoint.
my ($rolled_back) = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id';
	ROLLBACK;}) =~ /([0-9a-f-]{36})/;
my ($under_savepoint) = $node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['30001234567890'])) ->> 'id';
	ROLLBACK TO SAVEPOINT s;
	COMMIT;}) =~ /([0-9a-f-]{36})/;
ok( poll_until(
		sub {
			$node->safe_psql('postgres', qq{
				SELECT count(*) FROM switchgrid.orders
				WHERE order_id IN ('$rolled_back', '$under_savepoint') AND finished_at IS NOT NULL}) eq '2';
		},
		60, 'the rolled-back orders to be recorded'),
	'orders whose record was rolled back are recorded by the worker');

# SIGTERM during a transfer that would hang for 30 s.
$node->safe_psql('postgres',
	"ALTER SYSTEM SET switchgrid.poll_interval = '1s'; SELECT pg_reload_conf()");
sim_control('POST', '/faults',
	{ method => 'GET', path => '/order/', delay_ms => 30000, times => -1 });
my $hung = $node->safe_psql('postgres', q{
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id'});
ok( poll_until(
		sub {
			scalar grep { $_->{path} =~ /\Q$hung\E/ } @{ sim_control('GET', '/log')->{json} };
		},
		undef, 'the worker to be in the hung request'),
	'worker is waiting on the simulator');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'");
my $t0 = time();
kill 'TERM', $pid;
ok( poll_until(sub { !kill(0, $pid) }, 10, 'the worker to exit'),
	'worker exits on SIGTERM in the middle of a transfer');
my $elapsed = time() - $t0;
note sprintf('worker exited %.3f s after SIGTERM', $elapsed);
cmp_ok($elapsed, '<', 5, 'well before the 30 s transfer would have ended');
sim_control('DELETE', '/faults');

$listener->quit;
$node->stop;
done_testing();
