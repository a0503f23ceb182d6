# Memory stays flat: 10,000 calls in one backend, and compressed hours of
# worker rounds, leave the process's private memory where it was after a
# warm-up.  Private memory is RssAnon in /proc/<pid>/status; VmRSS would
# also count the shared buffers a process has touched, which grow on their
# own.  The bounds are generous: a leak of 1 kB a call would show as 10 MB.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

plan skip_all => 'needs /proc/<pid>/status with RssAnon (Linux)'
  unless -r '/proc/self/status' && slurp_file('/proc/self/status') =~ /^RssAnon:/m;

# Orders on Marc Sansservice's meter (retry after activation) stay pending
# for as long as the activation takes: an hour here, so the worker polls them
# round after round.
my $sim = start_simulator(args => [ '--activation-ms', 3600000 ]);
my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '100ms',
	'switchgrid.max_concurrency' => '16',
	'switchgrid.max_requests_per_second' => '0');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

my $JEANNE = '09111642617347';
my $MARC = '12345678901234';
sign_consent($node, 'postgres', [ [ 'Jeanne Dupond', $JEANNE ], [ 'Marc Sansservice', $MARC ] ]);

sub rss_anon_kb
{
	my ($pid) = @_;
	my ($kb) = slurp_file("/proc/$pid/status") =~ /^RssAnon:\s+(\d+) kB/m;
	die "no RssAnon for pid $pid" unless defined $kb;
	return $kb;
}

# -- one backend, 10,000 calls ------------------------------------------------

# a finished order with a one-day load curve (48 points)
my $order = $node->safe_psql('postgres', qq{
	SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['$JEANNE'], 'CONSUMPTION',
	    '2024-03-04', '2024-03-05')) ->> 'id'});
ok( poll_until(
		sub {
			$node->safe_psql('postgres',
				"SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$order'") eq 't';
		},
		60, 'the order to finish'),
	'a small load curve is ready');
my $request = $node->safe_psql('postgres',
	"SELECT request_id FROM switchgrid.requests WHERE order_id = '$order'");

# 250 calls of each of four functions (one of them failing, its error caught),
# as one transaction.
my $batch = qq{
	DO \$\$
	DECLARE
	    n integer;
	BEGIN
	    FOR i IN 1 .. 250 LOOP
	        PERFORM switchgrid_order_status('$order');
	        PERFORM switchgrid_request('LOADCURVE', ARRAY['$JEANNE'], 'CONSUMPTION',
	                                   '2024-03-04', '2024-03-05');
	        SELECT count(*) INTO n FROM switchgrid_loadcurve('$request');
	        IF n <> 48 THEN
	            RAISE 'expected 48 points, got %', n;
	        END IF;
	        BEGIN
	            PERFORM switchgrid_order_status('00000000-0000-4000-8000-000000000000');
	        EXCEPTION WHEN no_data_found THEN
	            NULL;
	        END;
	    END LOOP;
	END \$\$};

my $session = $node->background_psql('postgres');
$session->query_safe('SET client_min_messages = warning');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
$session->query_safe($batch) for 1 .. 2;    # warm-up: 2,000 calls
my $before = rss_anon_kb($pid);
$session->query_safe($batch) for 1 .. 10;    # 10,000 calls
my $after = rss_anon_kb($pid);
is($session->query_safe('SELECT pg_backend_pid()'), $pid, 'the same backend made every call');
my $growth = $after - $before;
diag "backend $pid: RssAnon $before kB after the warm-up, $after kB after 10,000 calls "
  . "(growth $growth kB, " . sprintf('%.1f', $growth * 1024 / 10000) . ' bytes a call)';
cmp_ok($growth, '<', 4096, 'the backend\'s private memory stays flat over 10,000 calls');
$session->quit;

# -- the worker, an hour of rounds compressed -----------------------------------

# 60 orders that stay pending, polled every 100 ms instead of every 30 s; a
# tenth of the polls fail (HTTP 503), and 4 Asks wait for a signature.
$node->safe_psql('postgres', qq{
	SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['$MARC'], 'CONSUMPTION',
	    date '2024-01-01' + i, date '2024-01-02' + i, retry_after_activation => true))
	FROM generate_series(1, 60) i});
$node->safe_psql('postgres', qq{
	SELECT switchgrid_ask(ARRAY(SELECT contract_id
	    FROM switchgrid_search_contract('Jeanne Dupond', prm => '$JEANNE')),
	    '{"firstName": "Jeanne", "lastName": "Dupond"}')
	FROM generate_series(1, 4)});
my @failing = split /\n/, $node->safe_psql('postgres',
	'SELECT order_id FROM switchgrid.orders WHERE finished_at IS NULL ORDER BY order_id LIMIT 6');
sim_control('POST', '/faults',
	{ method => 'GET', path => '/order/(' . join('|', @failing) . ')', status => 503, times => -1 });

my $worker = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'});
# The simulator counts the polls: an answer that changes nothing is not
# written, so the polls column does not.
sub polls
{
	return scalar grep { $_->{method} eq 'GET' && $_->{path} =~ m{/order/} }
	  @{ sim_control('GET', '/log')->{json} };
}
# An hour at the default poll_interval (30 s) is 120 rounds: 7,200 polls of
# 60 orders.  First a warm-up of 1,000 polls.
ok(poll_until(sub { polls() >= 1000 }, 120, 'the warm-up rounds'), 'the worker polls');
my $w_before = rss_anon_kb($worker);
my $p_before = polls();
ok(poll_until(sub { polls() >= $p_before + 7200 }, 240, 'an hour of rounds'),
	'the worker makes 7,200 more polls');
my $w_after = rss_anon_kb($worker);
my $p_after = polls();
is($node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'}),
	$worker, 'the same worker did every round');
my $w_growth = $w_after - $w_before;
diag "worker $worker: RssAnon $w_before kB after the warm-up, $w_after kB after "
  . ($p_after - $p_before) . " more polls (growth $w_growth kB)";
cmp_ok($w_growth, '<', 4096, 'the worker\'s private memory stays flat');

$node->stop;
done_testing();
