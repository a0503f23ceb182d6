# The worker against other transactions and against forged webhooks:
# - a user's transaction holding the rows of some Orders delays those Orders
#   only: the worker never waits on a lock, and an unrelated Order finishes
#   while the rows are still held;
# - webhooks are hints: a forged event in a rolled-back transaction costs no
#   API call, a committed flood of them costs at most the look-up budget, and
#   neither keeps a rolled-back (billed) Order from being recorded.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

# Load curves over 7 days stay PENDING for an hour; a C68 is done in 0.4 s.
my $sim = start_simulator(args => [ '--complete-ms', 400, '--long-complete-ms', 3600000 ]);

my $node = PostgreSQL::Test::Cluster->new('contention');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '1s');
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION switchgrid;
	CREATE ROLE app LOGIN;
	GRANT EXECUTE ON FUNCTION switchgrid_order(jsonb, uuid), switchgrid_order_status(uuid),
	    switchgrid_request(text, text[], text, timestamptz, timestamptz, boolean),
	    switchgrid_wait(uuid, interval), switchgrid_webhook(jsonb) TO app});
sign_consent($node, 'postgres',
	[ [ 'Jeanne Dupond', '09111642617347' ], [ 'SARL Les Tanneurs', '30001234567890' ] ]);

sub order_finished
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$id'") eq 't';
}

# ---- A user's transaction holds the rows of 4 pending Orders ----

my @held = split /\n/, $node->safe_psql('postgres', q{
	SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
	                                           d, d + interval '30 days')) ->> 'id'
	FROM generate_series(timestamptz '2024-01-01', timestamptz '2024-04-01', interval '1 month') d});
is(scalar @held, 4, '4 long orders placed');
my $held_list = join(',', map { "'$_'::uuid" } @held);

# The granted role looks them up in one transaction, which records them and
# keeps their rows locked, and then does not end.  A look-up whose answer is
# the one recorded writes nothing: the transaction first makes the recorded
# answers stale, so that the look-ups have something to record.
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe("UPDATE switchgrid.orders SET raw = '{}' WHERE order_id IN ($held_list)");
$holder->query_safe('SET ROLE app');
is( $holder->query_safe(
		"SELECT count(*) FROM unnest(ARRAY[$held_list]) id WHERE switchgrid_order_status(id) ->> 'status' <> ''"),
	'4', 'the transaction looked up the 4 orders');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');

ok( poll_until(
		sub { slurp_file($node->logfile) =~ /order (?:\Q$held[0]\E|\Q$held[1]\E|\Q$held[2]\E|\Q$held[3]\E) is locked by another transaction/ },
		undef, 'the worker to find a held order locked'),
	'the worker finds the held orders locked, and says so');

# An unrelated Order finishes while the rows are held, and the worker is
# never seen waiting on a lock meanwhile.
my $c68 = $node->safe_psql('postgres', q{
	SET ROLE app;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['30001234567890'])) ->> 'id'});
my $worker_waits = 0;
ok( poll_until(
		sub {
			$worker_waits += $node->safe_psql('postgres', q{
				SELECT count(*) FROM pg_stat_activity
				WHERE backend_type = 'switchgrid worker' AND wait_event_type = 'Lock'});
			order_finished($c68);
		},
		undef, 'the unrelated order to finish'),
	'an unrelated order finishes');
is($worker_waits, 0, 'the worker was never seen waiting on a lock');
is( $node->safe_psql('postgres', qq{
		SELECT state FROM pg_stat_activity WHERE pid = $holder_pid}),
	'idle in transaction', 'while the user\'s transaction still holds its rows');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM switchgrid.orders
		WHERE order_id IN ($held_list)
		  AND xmax::text = (SELECT backend_xid::text FROM pg_stat_activity WHERE pid = $holder_pid)}),
	'4', 'and the 4 rows are still its own');
is( $node->safe_psql('postgres', qq{
		SELECT status FROM switchgrid.orders WHERE order_id = '$c68'}),
	'SUCCESS', 'the unrelated order is recorded');
is( $node->safe_psql('postgres', qq{
		SET ROLE app; SELECT switchgrid_wait('$c68') ->> 'status'}),
	'SUCCESS', 'switchgrid_wait() returns it at once');

# Once the transaction ends, the held orders are polled again (their answers
# are the ones the look-ups recorded: polls counts only answers that changed
# something, so the simulator's log shows the polls).
$holder->query_safe('COMMIT');
sub held_polls
{
	my %n;
	for my $e (@{ sim_control('GET', '/log')->{json} })
	{
		$n{$1}++ if $e->{method} eq 'GET' && $e->{path} =~ m{/order/([0-9a-f-]{36})$};
	}
	return [ map { $n{$_} // 0 } @held ];
}
my $before = held_polls();
ok( poll_until(
		sub {
			my $now = held_polls();
			!grep { $now->[$_] < $before->[$_] + 2 } 0 .. $#held;
		},
		undef, 'the held orders to be polled again'),
	'the held orders are followed again once the rows are free');
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM switchgrid.orders
		WHERE order_id IN ($held_list) AND polls > 0 AND raw <> '{}'}),
	'4', 'and their answers are recorded');
$holder->quit;

# ---- Forged webhooks ----

# A forged event names an order of this fixed, unknown prefix.
sub forged_calls
{
	my ($prefix) = @_;
	return scalar grep { $_->{path} =~ m{/order/\Q$prefix\E} } @{ sim_control('GET', '/log')->{json} };
}

sub forged_events
{
	my ($prefix, $from, $to) = @_;
	return qq{
	SELECT count(switchgrid_webhook(jsonb_build_object('event', jsonb_build_object(
	    '_tag', 'order.request_success',
	    'orderId', '$prefix' || lpad(i::text, 12, '0'),
	    'requestId', '$prefix' || lpad(i::text, 12, '0'),
	    'requestType', 'C68'))))
	FROM generate_series($from, $to) i};
}

sim_control('POST', '/reset');

# 2,000 forged events and a billed order, in a transaction that rolls back:
# the order is recorded, and the events cost nothing.
my ($rolled_back) = $node->safe_psql('postgres',
	"SET ROLE app; BEGIN; " . forged_events('f0f0f0f0-0000-4000-8000-', 1, 2000) . q{;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id';
	ROLLBACK;}) =~ /([0-9a-f]{8}-[0-9a-f-]{27})$/;
ok(defined $rolled_back, 'an order placed in the rolled-back transaction');
ok(poll_until(sub { order_finished($rolled_back) }, undef, 'the rolled-back order to be recorded'),
	'the rolled-back order is recorded by the worker');
is($node->safe_psql('postgres', "SELECT count(*) FROM switchgrid.webhook_events"),
	'0', 'the rolled-back events left no row');
is(forged_calls('f0f0f0f0-'), 0, 'and cost no API call');

# A committed flood of 1,000 forged events (one round takes them all), then
# a billed order rolled back: the order is recorded, and the flood costs at
# most the budget of 10 look-ups.
$node->safe_psql('postgres', "SET ROLE app; " . forged_events('f1f1f1f1-0000-4000-8000-', 1, 1000));
my ($after_flood) = $node->safe_psql('postgres', q{
	SET ROLE app;
	BEGIN;
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['30001234567890'])) ->> 'id';
	ROLLBACK;}) =~ /([0-9a-f]{8}-[0-9a-f-]{27})$/;
ok(poll_until(sub { order_finished($after_flood) }, undef, 'the order rolled back after the flood'),
	'an order rolled back during a flood of forged webhooks is recorded');
is( $node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE handled_at IS NULL), count(*) FROM switchgrid.webhook_events"),
	'0|1000', 'the worker took every committed event');
my $calls = forged_calls('f1f1f1f1-');
note "the flood cost $calls look-ups";
cmp_ok($calls, '>=', 1, 'unknown orders named by webhooks are looked up');
cmp_ok($calls, '<=', 10, 'but no more than the budget');
like(slurp_file($node->logfile), qr/unknown orders named by webhooks were not looked up/,
	'the worker says it dropped the rest');

# The same forged ids again, committed: already looked up, they cost nothing
# more (even with the budget refilled).
$node->safe_psql('postgres', "SET ROLE app; " . forged_events('f1f1f1f1-0000-4000-8000-', 1, 1000));
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				'SELECT count(*) FROM switchgrid.webhook_events WHERE handled_at IS NULL') eq '0';
		},
		undef, 'the worker to take the repeated events'),
	'the repeated events are taken');
# a later order, finished by the worker, marks a later round
my $marker = $node->safe_psql('postgres', q{
	SELECT switchgrid_order(switchgrid_request('C68', ARRAY['09111642617347'])) ->> 'id'});
ok(poll_until(sub { order_finished($marker) }, undef, 'a later order to finish'), 'a later round ran');
cmp_ok(forged_calls('f1f1f1f1-'), '<=', 10, 'ids looked up already are not looked up again');

$node->stop;
done_testing();
