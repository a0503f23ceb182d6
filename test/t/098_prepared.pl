# A transaction that placed Orders cannot be prepared (PREPARE TRANSACTION):
# its Orders would be out of the worker's reach until COMMIT/ROLLBACK
# PREPARED, lost by a ROLLBACK PREPARED after a restart, and it would hold
# the daily budget's lock.  It rolls back instead, and its Orders are
# recorded as those of any rolled-back transaction.  One whose Orders were
# all handed over at a rolled-back savepoint can still be prepared.
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
my $node = PostgreSQL::Test::Cluster->new('prepared');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.max_orders_per_day' => 50,
	'switchgrid.poll_interval' => '1s',
	'max_prepared_transactions' => 2);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', $prm ] ]);

my $order = "switchgrid_order(switchgrid_request('C68', ARRAY['$prm'])) ->> 'id'";
my $recorded = sub {
	my ($ids) = @_;
	my $list = join(',', map { "'$_'" } @$ids);
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM switchgrid.orders WHERE order_id IN ($list) AND status <> 'HANDED_OVER'");
};

# -- Orders placed at the top level: PREPARE is refused --------------------

my $offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', qq{
	BEGIN;
	SELECT $order;
	SELECT $order;
	PREPARE TRANSACTION 'with_orders';},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  0A000: cannot PREPARE a transaction that has placed Switchgrid orders/,
	'PREPARE TRANSACTION of a transaction that placed Orders fails with 0A000');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'... and nothing is prepared');
my @ids = slurp_file($node->logfile, $offset) =~ /switchgrid: placed order ([0-9a-f-]{36})/g;
is(scalar @ids, 2, 'two Orders were placed');
ok(poll_until(sub { $recorded->(\@ids) == 2 }),
	'the worker records both Orders of the transaction that could not be prepared');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), '0',
	'no one holds the daily budget\'s lock');

# -- Orders handed over at a rolled-back savepoint: PREPARE goes through ----

$offset = -s $node->logfile;
$node->safe_psql('postgres', qq{
	BEGIN;
	SAVEPOINT s;
	SELECT $order;
	ROLLBACK TO SAVEPOINT s;
	PREPARE TRANSACTION 'orders_handed_over';});
@ids = slurp_file($node->logfile, $offset) =~ /switchgrid: placed order ([0-9a-f-]{36})/g;
is(scalar @ids, 1, 'an Order was placed under a savepoint');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
	'0', 'the prepared transaction does not hold the daily budget\'s lock');
# another session places an Order meanwhile, without waiting
like($node->safe_psql('postgres', "SET lock_timeout = '5s'; SELECT $order"),
	qr/^[0-9a-f-]{36}$/, 'another session places an Order while it is prepared');
ok(poll_until(sub { $recorded->(\@ids) == 1 }),
	'the Order of the rolled-back savepoint is recorded while the transaction is prepared');
$node->safe_psql('postgres', "ROLLBACK PREPARED 'orders_handed_over'");

$node->stop;
done_testing();
