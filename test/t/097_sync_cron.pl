# The README's nightly sync, for real: one pg_cron job (Debian's
# postgresql-15-cron, installed by dev/setup) keeps every meter with a live
# consent up to date with switchgrid_sync(). The test shows, with the
# simulator's request log:
#  - the billing budget stops a runaway: with max_orders_per_transaction at
#    1, the job fails with 53400 after one POST, and that Order is still
#    recorded and stored by the worker;
#  - the job then orders only what is missing: the other meter, not the one
#    that Order covered;
#  - a second run orders nothing.
# pg_cron 1.4 starts jobs at the start of a minute; each wait has a deadline.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $sim = start_simulator(args => [ '--complete-ms', 200 ]);
my $node = PostgreSQL::Test::Cluster->new('sync_cron');
$node->init;
configure_node($node, $sim,
	'shared_preload_libraries' => 'switchgrid,pg_cron',
	'cron.database_name' => 'bi',
	'cron.use_background_workers' => 'on',
	# the worker follows "bi": it downloads what the job orders
	'switchgrid.database' => 'bi',
	'switchgrid.max_requests_per_second' => 0,
	'switchgrid.poll_interval' => '1s');
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE bi');
$node->safe_psql('bi', 'CREATE EXTENSION switchgrid');
$node->safe_psql('bi', 'CREATE EXTENSION pg_cron');

my @meters = ('09111642617347', '30001234567890');
my $ask = sign_consent($node, 'bi',
	[ [ 'Jeanne Dupond', $meters[0] ], [ 'SARL Les Tanneurs', $meters[1] ] ]);
$node->safe_psql('bi', "SELECT switchgrid_ask_status('$ask')");
is($node->safe_psql('bi', q{
	SELECT string_agg(prm, ',' ORDER BY prm) FROM switchgrid.consents WHERE state = 'live'}),
	join(',', sort @meters), 'both meters have a live consent');

my $posts = sub {
	scalar grep { $_->{method} eq 'POST' && $_->{path} =~ m{/order$} }
	  @{ $sim->control('GET', '/log')->{json} };
};
# the job's runs that ended, as "status" strings, oldest first
my $runs = sub {
	my ($job) = @_;
	return [ split /\n/, $node->safe_psql('bi', qq{
		SELECT status || ' ' || coalesce(return_message, '') FROM cron.job_run_details
		WHERE jobid = $job AND status IN ('succeeded', 'failed') ORDER BY runid}) ];
};
my $wait_runs = sub {
	my ($job, $n, $what) = @_;
	ok(poll_until(sub { @{ $runs->($job) } >= $n }, 150, $what), $what);
	return $runs->($job);
};
# every Order recorded and finished, its results stored
my $wait_stored = sub {
	my ($what) = @_;
	ok( poll_until(
			sub {
				$node->safe_psql('bi', q{
					SELECT count(*) > 0 AND bool_and(finished_at IS NOT NULL)
					FROM switchgrid.orders}) eq 't';
			},
			120, $what),
		$what);
};

# The README's recipe, scheduled every minute instead of every night.
my $recipe = q{
    SELECT count(*) FROM switchgrid_sync(
        ARRAY(SELECT DISTINCT prm FROM switchgrid.consents WHERE state = 'live'),
        ARRAY['loadcurve', 'daily_energy'], current_date - 14, dry_run => false)
};

# 1. A runaway: a budget of one Order a transaction, two meters to order.
$node->safe_psql('bi', 'ALTER DATABASE bi SET switchgrid.max_orders_per_transaction = 1');
my $job = $node->safe_psql('bi',
	"SELECT cron.schedule('switchgrid-sync', '* * * * *', \$\$$recipe\$\$)");
my $r = $wait_runs->($job, 1, 'the budgeted run to end');
$node->safe_psql('bi', "SELECT cron.unschedule($job)");
like($r->[0], qr/^failed .*max_orders_per_transaction/,
	'the budget stopped the run, naming the setting');
is($posts->(), 1, 'one Order was placed before the budget stopped the run');
$wait_stored->('the worker to record and store the Order the failed run placed');
my $first = $node->safe_psql('bi', q{
	SELECT string_agg(DISTINCT p, ',') FROM switchgrid.requests, unnest(prms) p});
ok((grep { $_ eq $first } @meters), "that Order was for one meter ($first)");
is($node->safe_psql('bi', qq{
	SELECT count(*) FROM switchgrid.coverage
	WHERE prm = '$first' AND dataset IN ('loadcurve', 'daily_energy') AND NOT test_env
	  AND last_day = current_date - 1 AND missing = '{}'}),
	'2', 'coverage: its load curve and daily energies are stored to yesterday');

# 2. The budget back to its default: the job orders only the other meter.
$node->safe_psql('bi', 'ALTER DATABASE bi RESET switchgrid.max_orders_per_transaction');
$job = $node->safe_psql('bi',
	"SELECT cron.schedule('switchgrid-sync', '* * * * *', \$\$$recipe\$\$)");
$r = $wait_runs->($job, 1, 'the first run to end');
like($r->[0], qr/^succeeded/, 'the first run succeeded');
is($posts->(), 2, 'it placed one Order, for the meter not up to date');
my ($other) = grep { $_ ne $first } @meters;
is($node->safe_psql('bi', qq{
	SELECT count(*) FROM switchgrid.orders o JOIN switchgrid.requests r USING (order_id)
	WHERE '$first' = ANY (r.prms) }), '2',
	'no new request names the meter already up to date');
$wait_stored->('the worker to store what the first run ordered');
is($node->safe_psql('bi', q{
	SELECT count(*) FROM switchgrid.coverage
	WHERE dataset IN ('loadcurve', 'daily_energy') AND NOT test_env
	  AND last_day = current_date - 1 AND missing = '{}'}),
	'4', 'coverage: both meters stored to yesterday');

# 3. The next run has nothing to order.
my $done = $node->safe_psql('bi', "SELECT count(*) FROM cron.job_run_details WHERE jobid = $job");
$r = $wait_runs->($job, $done + 1, 'a second run to end');
like($r->[-1], qr/^succeeded/, 'the second run succeeded');
is($posts->(), 2, 'the second run placed no Order');

$node->safe_psql('bi', "SELECT cron.unschedule($job)");
$node->stop;
done_testing();
