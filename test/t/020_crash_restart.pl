# Nothing is lost or duplicated when the server crashes or restarts while
# Orders are pending: the worker takes them up again and finishes them.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

# slow orders, so that they are still pending when the server goes down
my $sim = start_simulator(args => [ '--complete-ms', 2500, '--long-complete-ms', 3000 ]);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '1s',
	'restart_after_crash' => 'on');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', '09111642617347' ] ]);

# Places "n" one-day load-curve orders starting on "first"; returns their ids.
sub place_orders
{
	my ($first, $n) = @_;
	return split /\n/, $node->safe_psql('postgres', qq{
		SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['09111642617347'],
		           'CONSUMPTION', d, d + interval '1 day')) ->> 'id'
		FROM generate_series(timestamptz '$first 00:00 Europe/Paris',
		                     timestamptz '$first 00:00 Europe/Paris' + interval '1 day' * ($n - 1),
		                     interval '1 day') d});
}

sub all_finished
{
	return $node->safe_psql('postgres',
		'SELECT count(*) FROM switchgrid.orders WHERE finished_at IS NULL') eq '0';
}

# 1. A backend killed with SIGKILL: the postmaster restarts everything.
my @before = place_orders('2024-05-01', 5);
is(scalar @before, 5, 'five orders placed');

my $victim = $node->background_psql('postgres');
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
chomp $victim_pid;
kill 'KILL', $victim_pid;
ok( poll_until(sub { slurp_file($node->logfile) =~ /all server processes terminated; reinitializing/ },
		undef, 'the crash restart'),
	'server restarts after the crash');
eval { $victim->quit };
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';

ok(poll_until(\&all_finished, 60, 'the orders to finish after the crash'),
	'every order placed before the crash finishes');

# 2. pg_ctl restart while orders are pending.
my @more = place_orders('2024-06-01', 5);
$node->restart;
ok(poll_until(\&all_finished, 60, 'the orders to finish after the restart'),
	'every order placed before the restart finishes');

# no duplicates and nothing missing: 10 days of half-hours, each request stored
is( $node->safe_psql('postgres', q{
		SELECT count(*), count(DISTINCT (prm, direction, ts)) FROM switchgrid.loadcurve
		WHERE prm = '09111642617347'}),
	(10 * 48) . '|' . (10 * 48), 'each point stored once');
is($node->safe_psql('postgres', 'SELECT count(*) FROM switchgrid.orders'), '10', 'ten orders');
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM switchgrid.requests WHERE fetched_at IS NOT NULL AND rows_stored = 48'),
	'10', 'each request stored with its 48 points');

$node->stop;
done_testing();
