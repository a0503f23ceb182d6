# The fault matrix: every way the API can misbehave, met by a SQL function
# in a session and by the background worker.  Each fault must end in the
# error the README's "Errors" table documents (SQLSTATE), or in a retry; the
# session and the worker stay up (same pid, no crash in the server log), the
# other items of the worker's round go on, and nothing already stored
# changes.  Prints a table (fault, caller, outcome) and "N passed, N failed".
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $token = 'sim-fault-token-5e2a91';
my $sim = start_simulator(token => $token,
	args => [ '--pending-ms', 50, '--complete-ms', 300, '--long-complete-ms', 600 ]);

my $node = PostgreSQL::Test::Cluster->new('faults');
$node->init;
configure_node($node, $sim,
	'switchgrid.database' => 'postgres',
	'switchgrid.poll_interval' => '500ms',
	'switchgrid.timeout' => '2s',
	'switchgrid.connect_timeout' => '1s',
	'switchgrid.max_response_size' => '256kB',
	'log_min_messages' => 'info');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');

my $JEANNE = '09111642617347';
my $TANNEURS = '30001234567890';
sign_consent($node, 'postgres',
	[ [ 'Jeanne Dupond', $JEANNE ], [ 'SARL Les Tanneurs', $TANNEURS ] ]);

# A session that makes every synchronous call, and a helper in it that turns
# an error into "SQLSTATE: message", so one backend meets every fault.
$node->safe_psql('postgres', q{
	CREATE FUNCTION fm_try(q text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
	    EXECUTE q;
	    RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
	    RETURN SQLSTATE || ': ' || SQLERRM;
	END $$});
my $session = $node->background_psql('postgres');
$session->query_safe(q{SET switchgrid.timeout = '2s'; SET switchgrid.connect_timeout = '1s';
	SET switchgrid.max_retries = 0; SET client_min_messages = error});
my $session_pid = $session->query_safe('SELECT pg_backend_pid()');

# What is stored before any fault: a finished order with a load curve and a
# C68 payload, which nothing below may change.
sub place
{
	my ($psql, @requests) = @_;
	my $out = $psql->(q{SELECT o->>'id', o->'requests'->0->>'id' FROM switchgrid_order(jsonb_build_array(}
		  . join(', ', @requests) . q{)) AS o});
	return split /\|/, $out;
}
my $day = 0;
sub curve_request
{
	my ($prm) = @_;
	$day++;
	return "switchgrid_request('LOADCURVE', ARRAY['$prm'], 'CONSUMPTION',"
	  . " date '2024-01-01' + $day, date '2024-01-02' + $day)";
}
my $safe = sub { $node->safe_psql('postgres', $_[0]) };
my ($base_order, $base_curve) = place($safe, curve_request($JEANNE),
	"switchgrid_request('C68', ARRAY['$JEANNE'])");
my ($sync_order) = place($safe, "switchgrid_request('C68', ARRAY['$TANNEURS'])");
ok( poll_until(
		sub {
			$safe->(q{SELECT count(*) FROM switchgrid.orders WHERE finished_at IS NULL}) eq '0';
		},
		30, 'the first orders to finish'),
	'the baseline orders are stored');
my $worker_pid = $safe->(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'});
ok($worker_pid, "the worker runs (pid $worker_pid)");

# A checksum of everything stored for the orders finished so far (their
# bookkeeping columns aside: polls, failures and last_error may move).
sub checksum
{
	my ($ids) = @_;
	return $safe->(qq{
		WITH o AS (SELECT * FROM switchgrid.orders WHERE order_id = ANY ('{$ids}'::uuid[]))
		SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
		    SELECT format('o %s %s %s %s', order_id, status, raw, finished_at) FROM o
		    UNION ALL
		    SELECT format('r %s %s %s %s %s %s', request_id, status, data, data_url,
		                  rows_stored, fetched_at)
		    FROM switchgrid.requests WHERE order_id IN (SELECT order_id FROM o)
		    UNION ALL
		    SELECT format('l %s %s %s %s %s', prm, direction, ts, power_w, request_id)
		    FROM switchgrid.loadcurve
		    WHERE request_id IN (SELECT request_id FROM switchgrid.requests
		                         WHERE order_id IN (SELECT order_id FROM o))) AS s(x)});
}
sub finished_ids
{
	return join(',', split /\n/,
		$safe->(q{SELECT order_id FROM switchgrid.orders WHERE finished_at IS NOT NULL}));
}

# A port nothing listens on (bound, then released).
my $closed_port = do {
	require IO::Socket::INET;
	my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1', LocalPort => 0);
	my $p = $s->sockport;
	close $s;
	$p;
};
(my $refused_url = $sim->{base_url}) =~ s{:\d+/}{:$closed_port/};

# The faults.  "api" applies to GET /order/<id> (a status poll), "data" to
# GET /request/<id>/data (a load-curve download).  sync: the SQLSTATE the
# call ends in; worker: what its last_error says.  retry: the fault, once,
# is retried away by a call allowed one retry.
# A well-formed answer that describes this Order instead of the one asked for.
my $OTHER_ID = '00000000-0000-0000-0000-00000000beef';
my @faults = (
	{ name => 'HTTP 500', spec => { status => 500 }, sync => '58000',
		worker => qr/Switchgrid failed on/, both => 1 },
	{ name => 'HTTP 502', spec => { status => 502 }, sync => '58000',
		worker => qr/Switchgrid failed on/, retry => 1 },
	{ name => 'HTTP 503', spec => { status => 503 }, sync => '58000',
		worker => qr/Switchgrid failed on/, retry => 1 },
	{ name => '429 with Retry-After', spec => { status => 429, retry_after => 1 },
		sync => '53000', worker => qr/rate limit reached/, retry => 1 },
	{ name => '429 without Retry-After', spec => { status => 429 }, sync => '53000',
		worker => qr/rate limit reached/, retry => 1 },
	{ name => 'HTTP 401', spec => { status => 401 }, sync => '28000',
		worker => qr/refused the API token/ },
	{ name => 'HTTP 404', spec => { status => 404 }, sync => 'P0002',
		worker => qr/does not know this order|not found/ },
	{ name => 'connection refused', refused => 1, sync => '08001',
		worker => qr/could not connect/ },
	{ name => 'connection reset mid-body', spec => { reset => JSON::PP::true },
		sync => '08006|08P01', worker => qr/could not complete|incomplete response/,
		retry => 1, both => 1 },
	{ name => 'body cut short', spec => { truncate => JSON::PP::true }, sync => '08P01',
		worker => qr/incomplete response/, retry => 1, both => 1 },
	{ name => 'malformed JSON', spec => { malformed => JSON::PP::true }, sync => '08P01',
		worker => qr/malformed response/, both => 1 },
	{ name => 'JSON of the wrong shape', spec => { body => '{"unexpected": [1, 2]}' },
		data_spec => { body => '{"period": 1800, "values": {"a": "b"}}' },
		sync => '08P01', worker => qr/unexpected response|malformed response/, both => 1 },
	{ name => 'an answer about another id',
		spec => { body => qq{{"id": "$OTHER_ID", "status": "PENDING_REQUESTS", "requests": []}} },
		sync => '08P01', worker => qr/unexpected response.*HTTP 200 on GET \/order\/.*not the one asked for/ },
	{ name => 'deep nesting', spec => { nesting => 100000 }, sync => '08P01',
		worker => qr/malformed response/, both => 1 },
	{ name => 'body over the size cap', spec => { oversize => 400 * 1024 }, sync => '54000',
		worker => qr/exceeds switchgrid\.max_response_size/, both => 1 },
	{ name => 'server never answers', spec => { delay_ms => 30000 }, sync => '08006',
		worker => qr/timed out/ },
	{ name => 'a byte at a time', spec => { trickle_ms => 100 }, sync => '08006',
		worker => qr/timed out/, both => 1 },
	{ name => 'redirect to another host', redirect => 1, sync => '22023',
		worker => qr/rejected/ },
	{ name => 'invalid UTF-8', spec => { invalid_utf8 => JSON::PP::true }, sync => '08P01',
		worker => qr/malformed response/, both => 1, data_may_pass => 1 },
);

my @table;
my ($passed, $failed) = (0, 0);
sub outcome
{
	my ($fault, $caller, $ok, $what) = @_;
	ok($ok, "$fault, $caller: $what");
	push @table, [ $fault, $caller, ($ok ? '' : 'FAILED: ') . $what ];
	$ok ? $passed++ : $failed++;
}

sub spec_for
{
	my ($f, $zone, $id) = @_;
	my %spec = %{ ($zone eq 'data' && $f->{data_spec}) || $f->{spec} // {} };
	if ($f->{redirect})
	{
		%spec = (redirect => "$sim->{data_url}/files/$id.json");
	}
	$spec{method} = 'GET';
	$spec{path} = $zone eq 'data' ? "/request/$id/data" : "/order/$id";
	return \%spec;
}

# Requests that reached the data server (another origin) with a token.
sub data_auth_seen
{
	return scalar grep { $_->{server} eq 'data' && $_->{auth} ne 'absent' }
	  @{ sim_control('GET', '/log')->{json} };
}

# -- the synchronous caller ---------------------------------------------------

sub sync_case
{
	my ($f, $zone) = @_;
	my $call = $zone eq 'data'
	  ? "SELECT count(*) FROM switchgrid_loadcurve('$base_curve')"
	  : "SELECT switchgrid_order_status('$sync_order')";
	my $caller = $zone eq 'data' ? 'switchgrid_loadcurve()' : 'switchgrid_order_status()';
	my $ids = finished_ids();
	my $before = checksum($ids);

	sim_control('DELETE', '/faults');
	if ($f->{refused})
	{
		$session->query_safe("SET switchgrid.base_url = '$refused_url'");
	}
	else
	{
		sim_control('POST', '/faults',
			{ %{ spec_for($f, $zone, $zone eq 'data' ? $base_curve : $sync_order) }, times => -1 });
	}
	my $got = $session->query_safe("SELECT fm_try(\$q\$$call\$q\$)");
	$session->query_safe('RESET switchgrid.base_url') if $f->{refused};
	sim_control('DELETE', '/faults');
	(my $code) = $got =~ /^(\w{5}):/;
	$code //= $got;
	my $short = length($got) > 110 ? substr($got, 0, 107) . '...' : $got;
	my $ok = $code =~ /^(?:$f->{sync})$/;
	$ok = 1 if $zone eq 'data' && $f->{data_may_pass} && $got eq 'ok';
	$ok &&= checksum($ids) eq $before;
	$ok &&= $session->query_safe('SELECT pg_backend_pid()') eq $session_pid;
	$ok &&= data_auth_seen() == 0;
	$ok &&= $got !~ /\Q$token\E/;
	outcome($f->{name}, $caller, $ok, $short);

	# the same fault once, with one retry allowed: the call succeeds
	return unless $f->{retry};
	sim_control('POST', '/reset');
	sim_control('POST', '/faults', { %{ spec_for($f, $zone, $zone eq 'data' ? $base_curve : $sync_order) } });
	$got = $session->query_safe(
		"SET switchgrid.max_retries = 1; SELECT fm_try(\$q\$$call\$q\$); RESET switchgrid.max_retries;
		 SET switchgrid.max_retries = 0");
	$got =~ s/\s+$//;
	my $retried = grep { $_->{path} =~ /\Q$sync_order\E|\Q$base_curve\E/ }
	  @{ sim_control('GET', '/log')->{json} };
	sim_control('DELETE', '/faults');
	outcome($f->{name}, "$caller, 1 retry", $got eq 'ok' && $retried >= 2,
		"$got after $retried requests");
}

# -- the worker ----------------------------------------------------------------

# Places, in one transaction, an order to fault and an unfaulted one; the
# fault is in place before the commit wakes the worker.  Waits for the fault
# to be recorded and the other order to finish, then for the faulted item to
# finish once the fault is gone.
sub worker_case
{
	my ($f, $zone) = @_;
	my $caller = $zone eq 'data' ? 'worker download' : 'worker poll';
	my $ids = finished_ids();
	my $before = checksum($ids);
	my $w = $node->background_psql('postgres');

	$w->query_safe('BEGIN');
	my $bg = sub { my $o = $w->query_safe($_[0]); $o =~ s/\s+$//; $o };
	my ($faulted, $rid) = place($bg,
		$zone eq 'data' ? curve_request($JEANNE) : "switchgrid_request('C68', ARRAY['$JEANNE'])");
	my ($other) = place($bg, curve_request($TANNEURS), "switchgrid_request('C68', ARRAY['$TANNEURS'])");
	sim_control('DELETE', '/faults');
	if ($f->{refused})
	{
		$safe->("ALTER SYSTEM SET switchgrid.base_url = '$refused_url'");
		my $mark = -s $node->logfile;
		$safe->('SELECT pg_reload_conf()');
		poll_until(sub { substr(slurp_file($node->logfile), $mark) =~ /settings reloaded/ },
			10, 'the worker to reload');
	}
	else
	{
		sim_control('POST', '/faults',
			{ %{ spec_for($f, $zone, $zone eq 'data' ? $rid : $faulted) }, times => -1 });
	}
	$w->query_safe('COMMIT');
	$w->quit;

	my $item = $zone eq 'data'
	  ? "SELECT last_error, fetched_at IS NOT NULL FROM switchgrid.requests WHERE request_id = '$rid'"
	  : "SELECT last_error, finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$faulted'";
	my ($error, $done) = ('', 'f');
	poll_until(
		sub {
			($error, $done) = split /\|/, $safe->($item), 2;
			$error ne '' || ($done // '') eq 't';
		},
		20, "$f->{name}: the worker to meet the fault");
	my $other_done = $f->{refused} ? 'n/a (the whole API refuses)' : poll_until(
		sub {
			$safe->("SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$other'") eq 't';
		},
		20, "$f->{name}: the unfaulted order") ? 'finished' : 'STUCK';

	# the fault goes away: the faulted item is retried and finishes
	if ($f->{refused})
	{
		$safe->('ALTER SYSTEM RESET switchgrid.base_url; SELECT pg_reload_conf()');
	}
	sim_control('DELETE', '/faults');
	$safe->("UPDATE switchgrid.orders SET next_poll_at = now() WHERE order_id = '$faulted' AND finished_at IS NULL");
	$safe->("UPDATE switchgrid.requests SET next_fetch_at = now() WHERE request_id = '$rid' AND fetched_at IS NULL")
	  if $zone eq 'data';
	my $recovered = poll_until(
		sub {
			$safe->("SELECT finished_at IS NOT NULL FROM switchgrid.orders WHERE order_id = '$faulted'") eq 't';
		},
		20, "$f->{name}: the faulted order after the fault");

	my $pid_now = $safe->(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'switchgrid worker'});
	my $short = $error eq '' ? ($done eq 't' ? 'stored (nothing wrong to report)' : 'NOTHING RECORDED') : $error;
	$short = substr($short, 0, 87) . '...' if length($short) > 90;
	my $ok = ($error =~ $f->{worker}) || ($zone eq 'data' && $f->{data_may_pass} && $done eq 't');
	$ok &&= $other_done ne 'STUCK';
	$ok &&= $recovered;
	$ok &&= $pid_now eq $worker_pid;
	$ok &&= checksum($ids) eq $before;
	$ok &&= data_auth_seen() == 0;
	$ok &&= $error !~ /\Q$token\E/;
	outcome($f->{name}, $caller,
		$ok, "$short; other order $other_done; " . ($recovered ? 'retried, finished' : 'NEVER FINISHED'));
}

foreach my $f (@faults)
{
	sync_case($f, 'api');
	sync_case($f, 'data') if $f->{both};
}
foreach my $f (@faults)
{
	worker_case($f, 'api');
	worker_case($f, 'data') if $f->{both};
}

# Nothing crashed, and the token went nowhere.
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated|PANIC|exited with exit code/,
	'no backend or worker crashed or restarted');
unlike($log, qr/\Q$token\E/, 'the token is not in the server log');
is($safe->(qq{
	SELECT count(*) FROM switchgrid.orders o JOIN switchgrid.requests r USING (order_id)
	WHERE o.last_error LIKE '%$token%' OR r.last_error LIKE '%$token%'
	   OR o.raw::text LIKE '%$token%'}), '0', 'nor in the tables');
is($safe->("SELECT count(*) FROM switchgrid.orders WHERE order_id = '$OTHER_ID'"), '0',
	'an answer about another id is never recorded as that one');
is($session->query_safe('SELECT pg_backend_pid()'), $session_pid, 'the session is the same backend');
$session->quit;

my $w1 = (sort { $b <=> $a } map { length $_->[0] } @table)[0];
my $w2 = (sort { $b <=> $a } map { length $_->[1] } @table)[0];
diag(sprintf("%-*s  %-*s  %s", $w1, 'fault', $w2, 'caller', 'outcome'));
diag(sprintf("%-*s  %-*s  %s", $w1, $_->[0], $w2, $_->[1], $_->[2])) foreach @table;
diag("$passed passed, $failed failed");

$node->stop;
done_testing();
