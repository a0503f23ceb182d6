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

# 3. A billed Order whose record was rolled back is handed to the worker,
# which makes the hand-over durable at once (a placeholder row): the worker
# killed, or the server restarted, while its poll of the Order hangs loses
# nothing.
sub worker_pid
{
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'});
}

# Places (and bills) a C68 order in a transaction that rolls back; returns its id.
sub place_rolled_back
{
	my ($id) = $node->safe_psql('postgres', q{
		BEGIN;
		SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id';
		ROLLBACK;}) =~ /([0-9a-f-]{36})/;
	return $id;
}

# Places an order that rolls back; returns its id once the worker has made
# it a placeholder and its poll hangs on the simulator.
sub hand_over_hanging
{
	sim_control('POST', '/reset');
	sim_control('POST', '/faults', { method => 'GET', path => '/order/', delay_ms => 60000, times => -1 });
	my $id = place_rolled_back();
	ok( poll_until(
			sub {
				grep { $_->{path} =~ /\Q$id\E/ && !defined $_->{status} }
				  @{ sim_control('GET', '/log')->{json} };
			},
			30, 'the worker to poll the handed-over order'),
		'the worker polls the handed-over order, and the poll hangs');
	is( $node->safe_psql('postgres', qq{
			SELECT o.status, o.raw, o.finished_at IS NULL, p.kind
			FROM switchgrid.orders o JOIN switchgrid.pending p ON p.id = o.order_id
			WHERE o.order_id = '$id'}),
		'HANDED_OVER|{}|t|order', 'meanwhile the order is a placeholder row, pending');
	is($node->safe_psql('postgres', "SELECT switchgrid.order_progress('$id') IS NULL"), 't',
		'which switchgrid_wait() does not take for a record');
	return $id;
}

sub order_recorded
{
	my ($id) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT status = 'SUCCESS' AND raw ->> 'id' = '$id' AND finished_at IS NOT NULL
		FROM switchgrid.orders WHERE order_id = '$id'}) eq 't';
}

my $killed = hand_over_hanging();
my $old_pid = worker_pid();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($old_pid)");
sim_control('DELETE', '/faults');
ok( poll_until(sub { my $p = worker_pid(); $p ne '' && $p ne $old_pid }, 30, 'a new worker'),
	'the worker is restarted after being killed');
ok(poll_until(sub { order_recorded($killed) }, 60, 'the handed-over order after the kill'),
	'an order handed over to a worker killed during its poll is recorded');

my $restarted = hand_over_hanging();
$node->restart;
sim_control('DELETE', '/faults');
ok(poll_until(sub { order_recorded($restarted) }, 60, 'the handed-over order after the restart'),
	'an order handed over before a restart is recorded');

# A placeholder that the API does not know is given up at once, its row and
# its reason kept (the id was billed); it is not polled again.
sim_control('POST', '/reset');
sim_control('POST', '/faults', { method => 'GET', path => '/order/', status => 404, times => -1 });
my $unknown = place_rolled_back();
ok( poll_until(
		sub {
			$node->safe_psql('postgres', qq{
				SELECT next_poll_at IS NULL AND last_error LIKE '%HTTP 404%handed over%'
				FROM switchgrid.orders WHERE order_id = '$unknown'}) eq 't';
		},
		30, 'the unknown placeholder to be given up'),
	'a handed-over order unknown to the API is given up, with its reason');
is($node->safe_psql('postgres', "SELECT count(*) FROM switchgrid.pending WHERE id = '$unknown'"),
	'0', 'and is no longer pending');
sim_control('DELETE', '/faults');

$node->stop;
done_testing();
