# The billing budget: switchgrid.max_orders_per_transaction and
# switchgrid.max_orders_per_day stop an Order before its POST (53400), and
# the Orders placed before that are kept: the transaction rolls back, and
# the worker records every one of them.  Two sessions take turns against the
# daily budget, so that it is never exceeded.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $prm = '09111642617347';
my $sim = start_simulator();
my $node = PostgreSQL::Test::Cluster->new('budget');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.max_orders_per_transaction' => 5,
	'switchgrid.poll_interval' => '1s');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', $prm ] ]);

my $order = "switchgrid_order(switchgrid_request('C68', ARRAY['$prm']))";
my $posts = sub {
	scalar grep { $_->{method} eq 'POST' && $_->{path} =~ m{/order$} }
	  @{ $sim->control('GET', '/log')->{json} };
};
# the ids of the Orders placed, from the server log (every one is named there)
my $placed_since = sub {
	my ($offset) = @_;
	my $log = slurp_file($node->logfile, $offset);
	return [ $log =~ /switchgrid: placed order ([0-9a-f-]{36})/g ];
};
my $recorded = sub {
	my ($ids) = @_;
	my $list = join(',', map { "'$_'" } @$ids);
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM switchgrid.orders WHERE order_id IN ($list) AND status <> 'HANDED_OVER'");
};

# -- Bad values, and who may set them --------------------------------------

my ($ret, $out, $err) = $node->psql('postgres', 'SET switchgrid.max_orders_per_transaction = 0');
like($err, qr/0 is outside the valid range/, 'max_orders_per_transaction cannot be switched off with 0');
($ret, $out, $err) = $node->psql('postgres', 'SET switchgrid.max_orders_per_transaction = 10001');
like($err, qr/10001 is outside the valid range/, '... nor set past the size of the hand-over queue');
($ret, $out, $err) = $node->psql('postgres', 'SET switchgrid.max_orders_per_day = -1');
like($err, qr/-1 is outside the valid range/, 'max_orders_per_day refuses a negative value');
($ret, $out, $err) = $node->psql('postgres', q{SET switchgrid.max_orders_per_day = 'many'});
like($err, qr/invalid value for parameter "switchgrid.max_orders_per_day"/, '... and one that is no number');
is($node->safe_psql('postgres', 'SHOW switchgrid.max_orders_per_day'), '0', 'the daily budget is off by default');

$node->safe_psql('postgres', q{
	CREATE ROLE meter_reader LOGIN;
	GRANT USAGE ON SCHEMA switchgrid TO meter_reader;
	GRANT EXECUTE ON FUNCTION switchgrid_order(jsonb, uuid) TO meter_reader;});
foreach my $setting ('switchgrid.max_orders_per_transaction', 'switchgrid.max_orders_per_day')
{
	($ret, $out, $err) = $node->psql('postgres', "SET ROLE meter_reader; SET $setting = 1000");
	like($err, qr/permission denied to set parameter "\Q$setting\E"/,
		"a user who is no superuser cannot set $setting");
}

# -- Per transaction --------------------------------------------------------

$sim->control('POST', '/reset', {});
my $offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres',
	"SELECT $order FROM generate_series(1, 8)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'eight Orders in one statement fail with a budget of five');
like($err, qr/ERROR:  53400: order budget exceeded: switchgrid.max_orders_per_transaction is 5/,
	'SQLSTATE 53400, naming the setting');
like($err, qr/HINT:  .*raise switchgrid.max_orders_per_transaction/, 'the hint says how to raise it');
is($posts->(), 5, 'exactly five POST /order reached the API');
my $ids = $placed_since->($offset);
is(scalar @$ids, 5, 'five Orders were placed');
ok(poll_until(sub { $recorded->($ids) == 5 }, undef, 'the five Orders recorded'),
	'the worker records all five, though their transaction rolled back');

# A rolled-back subtransaction does not give its Orders back to the budget.
$sim->control('POST', '/reset', {});
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', qq{
	BEGIN;
	SAVEPOINT s;
	SELECT $order FROM generate_series(1, 3);
	ROLLBACK TO SAVEPOINT s;
	SELECT $order FROM generate_series(1, 3);
	COMMIT;},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/53400: order budget exceeded: switchgrid.max_orders_per_transaction is 5/,
	'the Orders of a rolled-back savepoint still count');
is($posts->(), 5, 'five POSTs again');
$ids = $placed_since->($offset);
ok(poll_until(sub { $recorded->($ids) == 5 }, undef, 'the five Orders recorded'),
	'all five recorded');

# A bigger budget: the tracking of a transaction grows past what it held before.
$sim->control('POST', '/reset', {});
$offset = -s $node->logfile;
($ret, $out, $err) = $node->psql('postgres', qq{
	SET switchgrid.max_orders_per_transaction = 40;
	SELECT $order FROM generate_series(1, 41);});
like($err, qr/switchgrid.max_orders_per_transaction is 40/, 'the 41st Order of a budget of 40 fails');
is($posts->(), 40, 'forty POSTs');
$ids = $placed_since->($offset);
is(scalar @$ids, 40, 'forty Orders placed');
ok(poll_until(sub { $recorded->($ids) == 40 }, undef, 'the forty Orders recorded'),
	'all forty recorded: the hand-over lost none');

# -- Per day ----------------------------------------------------------------

my $today = $node->safe_psql('postgres', 'SELECT count(*) FROM switchgrid.orders');
is($today, '50', 'fifty Orders were placed today');
my $budget = $today + 2;
$sim->control('POST', '/reset', {});
$node->safe_psql('postgres', "ALTER SYSTEM SET switchgrid.max_orders_per_day = $budget");
$node->reload;
ok(poll_until(sub { $node->safe_psql('postgres', 'SHOW switchgrid.max_orders_per_day') eq $budget }),
	'a daily budget of two more');
$node->safe_psql('postgres', "SELECT $order");
($ret, $out, $err) = $node->psql('postgres', "SELECT $order FROM generate_series(1, 2)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  53400: order budget exceeded: switchgrid.max_orders_per_day is $budget/,
	'the second transaction stops at the daily budget');
like($err, qr/DETAIL:  $budget orders were placed in the last 24 hours/, 'the detail counts them');
is($posts->(), 2, 'one POST in each transaction');
ok( poll_until(
		sub {
			$node->safe_psql('postgres', "SELECT count(*) FROM switchgrid.orders WHERE status <> 'HANDED_OVER'")
			  eq $budget;
		},
		undef,
		'the budget recorded'),
	'and the Order of the failed transaction is recorded too: the day is at its budget');
($ret, $out, $err) = $node->psql('postgres', "SELECT $order");
like($err, qr/switchgrid.max_orders_per_day/, 'a third transaction is refused at once');
is($posts->(), 2, 'without a POST');

# Two sessions at once: the second waits for the first to end, then counts
# what it placed.  Room for one more Order.
$budget++;
$node->safe_psql('postgres', "ALTER SYSTEM SET switchgrid.max_orders_per_day = $budget");
$node->reload;
ok(poll_until(sub { $node->safe_psql('postgres', 'SHOW switchgrid.max_orders_per_day') eq $budget }),
	'room for one more');
my $first = $node->background_psql('postgres', on_error_stop => 0);
$first->query_safe("BEGIN; SELECT $order;");
my $second = $node->background_psql('postgres', on_error_stop => 0);
$second->query_until(qr/started/, qq{
	\\echo started
	SELECT $order;
});
ok( poll_until(
		sub {
			$node->safe_psql('postgres', q{
				SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted
				  AND classid = (SELECT oid FROM pg_extension WHERE extname = 'switchgrid')}) eq '1';
		},
		undef,
		'the second session to wait'),
	'the second session waits for the first, which holds the daily budget');
is($posts->(), 3, 'the second has not placed its Order');
$first->query_safe('COMMIT');
my $res = $second->query('SELECT 1');
like($second->{stderr}, qr/switchgrid.max_orders_per_day is $budget/,
	'then it counts the first one\'s Order, and stops');
is($posts->(), 3, 'so the budget is not exceeded');
$first->quit;
$second->quit;

$node->stop;
done_testing();
