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
	    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE', '2024-03-01', '2024-03-08'))) ->> 'id'});
# switchgrid_wait() returns once everything is stored
my $status = $node->safe_psql('postgres',
	"SELECT switchgrid_wait('$order', '60 seconds') ->> 'status'");
is($status, 'SUCCESS', 'order finished');
$node->safe_psql('postgres', q{
	SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000001"}}')});

my $summary = q{
	SELECT (SELECT count(*) || '/' || sum(power_w)::bigint FROM switchgrid.loadcurve),
	       (SELECT count(*) FROM switchgrid.requests WHERE data IS NOT NULL),
	       (SELECT count(*) FROM switchgrid.orders),
	       (SELECT count(*) FROM switchgrid.asks),
	       (SELECT count(*) FROM switchgrid.webhook_events)};
my $before = $node->safe_psql('postgres', $summary);
like($before, qr{^336/\d+\|1\|1\|1\|1$}, 'a week of load curve, one payload, one order, ask, event');

my $dump = $node->basedir . '/switchgrid.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('postgres') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
is($node->safe_psql('restored', $summary), $before, 'the restored database has the same data');

# the identity sequence goes on after restore
$node->safe_psql('restored', q{
	SELECT switchgrid_webhook('{"event": {"_tag": "ask.accepted", "askId": "00000000-0000-0000-0000-000000000002"}}')});
is($node->safe_psql('restored', 'SELECT count(DISTINCT event_id) FROM switchgrid.webhook_events'),
	'2', 'new events get new ids');

$node->stop;
done_testing();
