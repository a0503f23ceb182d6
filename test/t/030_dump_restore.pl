# pg_dump keeps what was fetched: the switchgrid.* tables are configuration
# tables of the extension, so their rows are dumped with it.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 200 ]);
my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
configure_node($node, $sim, 'switchgrid.database' => 'postgres');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);
my $order = $node->safe_psql('postgres', q{
	SELECT switchgrid_order(jsonb_build_array(
	    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-03-01', '2024-03-08'),
	    switchgrid_request('R64_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-01', '2024-03-08'),
	    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-01', '2024-03-08'),
	    switchgrid_request('R66_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-01', '2024-03-08'),
	    switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-01-01', '2024-03-01'),
	    switchgrid_request('C68', ARRAY['09111642617347']))) ->> 'id'});
# switchgrid_wait() returns once everything is stored
my $status = $node->safe_psql('postgres',
	"SELECT switchgrid_wait('$order', '60 seconds') ->> 'status'");
is($status, 'SUCCESS', 'order finished');
# an Order of the test environment: its rows go to schema switchgrid_test
my $test_order = $node->safe_psql('postgres', q{
	SET switchgrid.test_env = on;
	SELECT switchgrid_order(jsonb_build_array(
	    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION', '2024-04-01', '2024-04-02'),
	    switchgrid_request('R64_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01', '2024-04-08'),
	    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01', '2024-04-08'),
	    switchgrid_request('R66_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-04-01', '2024-04-08'),
	    switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-01-01', '2024-03-01'),
	    switchgrid_request('C68', ARRAY['09111642617347']))) ->> 'id'});
is($node->safe_psql('postgres', "SELECT switchgrid_wait('$test_order', '60 seconds') ->> 'status'"),
	'SUCCESS', 'test-environment order finished');
$node->safe_psql('postgres', q{
	SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000001"}}')});
# the worker takes the event (handled_at): nothing changes after that
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				'SELECT count(*) FROM switchgrid.webhook_events WHERE handled_at IS NULL') eq '0';
		},
		30,
		'the webhook event taken'),
	'the worker took the webhook event');

# Every table whose rows pg_dump keeps (the extension's configuration
# tables), each with a fingerprint of all its rows.
my @tables = split /\n/, $node->safe_psql('postgres', q{
	SELECT c::regclass::text FROM pg_extension e, unnest(e.extconfig) AS c
	WHERE e.extname = 'switchgrid' AND (SELECT relkind FROM pg_class WHERE oid = c) = 'r'
	ORDER BY 1});
ok(scalar(grep { $_ eq 'switchgrid.daily_energy' } @tables), 'the typed tables are dumped with their rows');
my $summary = join(" UNION ALL ", map {
	"SELECT '$_', count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM $_ t"
} @tables);
my %before = map { split /\|/, $_, 2 } split /\n/, $node->safe_psql('postgres', $summary);
for my $t (@tables)
{
	unlike($before{$t}, qr/^0 /, "$t has rows");
}

my $dump = $node->basedir . '/switchgrid.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
my %after = map { split /\|/, $_, 2 } split /\n/, $node->safe_psql('restored', $summary);
is_deeply(\%after, \%before, 'the restored database has the same rows in every table');

# the identity sequence goes on after restore
$node->safe_psql('restored', q{
	SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000002"}}')});
is($node->safe_psql('restored', 'SELECT count(DISTINCT event_id) FROM switchgrid.webhook_events'),
	'2', 'new events get new ids');

$node->stop;
done_testing();
