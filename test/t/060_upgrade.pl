# Upgrades as users live them: for every released version (a kept install
# script sql/switchgrid--X.Y.Z.sql), create that version, store data in
# every one of its tables through its own functions, ALTER EXTENSION UPDATE
# to the version of this tree, and check that
#   - every row is still there, unchanged;
#   - the schema is the one a fresh install of this version makes: the same
#     pg_dump --schema-only --binary-upgrade output (which, unlike a plain
#     dump, spells out every member object of the extension), the same
#     member objects and the same configuration tables for pg_dump;
#   - the updated extension works: an Order placed after the update is
#     stored, in the typed tables too;
#   - the load-curve points of test-environment Orders moved to
#     switchgrid_test.loadcurve, and since/until became timestamptz.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $root = SwitchgridTest::tree_root();
my ($current) = slurp_file("$root/Makefile") =~ /^EXTVERSION\s*=\s*(\S+)/m
  or die "no EXTVERSION in the Makefile";

# Released versions: full install scripts other than this tree's own.
my @released = sort map { m{/switchgrid--([0-9.]+)\.sql$} ? ($1) : () }
  glob("$root/sql/switchgrid--*.sql");
@released = grep { $_ ne $current } @released;
ok(scalar(@released) >= 1, "released versions to upgrade from: @released");

my $sim = start_simulator(args => [ '--complete-ms', 200, '--long-complete-ms', 400 ]);
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
# the worker follows a database of its own, so that each step below does
# its own polling with switchgrid_wait() and nothing changes behind it
configure_node($node, $sim, 'switchgrid.database' => 'postgres');
$node->start;

# A dump of the extension's objects, with what differs between two equal
# schemas (oids, relfilenodes, dropped columns' placeholders) taken out.
sub schema_of
{
	my ($db) = @_;
	my ($out, $err);
	IPC::Run::run([ 'pg_dump', '--schema-only', '--binary-upgrade', '--no-owner',
			'-d', $node->connstr($db) ], '>', \$out, '2>', \$err)
	  or die "pg_dump $db failed: $err";
	my @lines;
	my $skip = 0;
	for my $line (split /\n/, $out)
	{
		next if $line =~ /^--/ || $line =~ /^\s*$/;
		next if $line =~ /binary_upgrade_set_/;
		next if $line =~ /^\\(un)?restrict /;    # random keys of newer pg_dumps
		next if $line =~ /^SELECT pg_catalog\.setval\(/;    # data, not schema
		$line =~ s/^WHERE oid = '\d+';$/WHERE oid = <oid>;/;
		$line =~ s/'\{[0-9,]+\}'/'{<oids>}'/ if $line =~ /binary_upgrade_create_empty_extension/;
		next if $line =~ /^SET |^SELECT pg_catalog\.set_config/;
		push @lines, $line;
	}
	return join("\n", @lines) . "\n";
}

sub members_of
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
		FROM pg_depend d JOIN pg_extension e ON d.refobjid = e.oid
		WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		  AND e.extname = 'switchgrid'
		ORDER BY 1});
}

sub config_of
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT c::regclass::text || ' ' || coalesce(w, '')
		FROM pg_extension e,
		     unnest(e.extconfig, e.extcondition) AS x(c, w)
		WHERE e.extname = 'switchgrid' ORDER BY 1});
}

# The tables of the extension, and a fingerprint of each one's rows over
# the columns it has now.
sub tables_of
{
	my ($db) = @_;
	return split /\n/, $node->safe_psql($db, q{
		SELECT c.relname FROM pg_class c
		JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
		                 AND d.deptype = 'e'
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'switchgrid'
		WHERE c.relkind IN ('r', 'p') ORDER BY 1});
}

# since and until, text in 0.1.0, are compared as the instants they name.
# The load-curve points of test-environment Orders move to switchgrid_test:
# "with_test" counts them where they are.
sub fingerprint
{
	my ($db, $table, $with_test, @columns) = @_;
	my $cols = join(', ',
		map { /^(since|until)$/ ? qq{"$_"::timestamptz AS "$_"} : qq{"$_"} } @columns);
	my $from = "SELECT $cols FROM switchgrid.$table";
	$from .= " UNION ALL SELECT $cols FROM switchgrid_test.$table" if $with_test;
	return $node->safe_psql($db, qq{
		SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')
		FROM ($from) r});
}

sub columns_of
{
	my ($db, $table) = @_;
	return split /\n/, $node->safe_psql($db, qq{
		SELECT attname FROM pg_attribute
		WHERE attrelid = 'switchgrid.$table'::regclass AND attnum > 0 AND NOT attisdropped
		ORDER BY attnum});
}

# What a fresh install of this version looks like.
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION switchgrid');
is($node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'switchgrid'}),
	$current, "a fresh install is version $current");
my $fresh_schema = schema_of('fresh');
my $fresh_members = members_of('fresh');
my $fresh_config = config_of('fresh');

my $dbn = 0;
for my $from (@released)
{
	my $db = 'from_' . ++$dbn;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION switchgrid VERSION '$from'");

	# Data in every table, through the old version's own functions.
	sign_consent($node, $db, [ [ 'Jeanne Dupond', '09111642617347' ],
			[ 'SARL Les Tanneurs', '30001234567890' ] ]);
	my $order = $node->safe_psql($db, q{
		SELECT switchgrid_order(jsonb_build_array(
		    switchgrid_request('LOADCURVE', ARRAY['09111642617347'], 'CONSUMPTION',
		                       '2024-03-30', '2024-04-02'),
		    switchgrid_request('LOADCURVE', ARRAY['30001234567890'], 'INJECTION',
		                       '2024-06-01', '2024-06-02'),
		    switchgrid_request('R65_SYNC', ARRAY['09111642617347'], 'SOUTIRAGE',
		                       '2024-03-01', '2024-03-08'),
		    switchgrid_request('C68', ARRAY['09111642617347']))) ->> 'id'});
	is($node->safe_psql($db, "SELECT switchgrid_wait('$order', '60 seconds') ->> 'status'"),
		'SUCCESS', "$from: an order stored");
	# an Order of the test environment: its consent comes from a test Ask
	my $test_ask = $node->safe_psql($db, q{
		SET switchgrid.test_env = on;
		SELECT switchgrid_ask(ARRAY(SELECT contract_id
		                            FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347')),
		                      '{"firstName": "Jeanne", "lastName": "Dupond"}') ->> 'id'});
	is(sim_control('POST', "/asks/$test_ask/accept")->{status}, 200, "$from: a test Ask signed");
	my $test_order = $node->safe_psql($db, qq{
		SELECT switchgrid_order(
		    switchgrid_request('LOADCURVE', direction => 'CONSUMPTION',
		                       since => '2024-05-01', until => '2024-05-02'),
		    (switchgrid_ask_status('$test_ask')->'consentIds'->>'09111642617347')::uuid) ->> 'id'});
	is($node->safe_psql($db, "SELECT switchgrid_wait('$test_order', '60 seconds') ->> 'status'"),
		'SUCCESS', "$from: a test-environment order stored");
	my $test_points = $node->safe_psql($db, qq{
		SELECT count(*) FROM switchgrid.loadcurve
		WHERE request_id IN (SELECT request_id FROM switchgrid.requests WHERE order_id = '$test_order')});
	cmp_ok($test_points, '>', 0, "$from: the test order's points are in switchgrid.loadcurve");
	# one more, left pending, so that a row waits for the worker across the update
	$node->safe_psql($db, q{
		SELECT switchgrid_order(switchgrid_request('R67', ARRAY['09111642617347'], 'SOUTIRAGE',
		                                           '2024-01-01', '2024-03-01'))});
	$node->safe_psql($db, qq{
		SELECT switchgrid_webhook('{"event": {"_tag": "order.request_success", "orderId": "$order",
		    "requestType": "C68", "requestId": "00000000-0000-0000-0000-000000000001"}}')});

	my @tables = tables_of($db);
	my %before;
	for my $t (@tables)
	{
		my @cols = columns_of($db, $t);
		$before{$t} = [ \@cols, fingerprint($db, $t, 0, @cols) ];
		unlike($before{$t}[1], qr/^0 /, "$from: switchgrid.$t has rows before the update");
	}

	# switchgrid_loadcurve() is dropped and created again (0.1.0 to 0.2.0): a
	# view over it stops the update, which changes nothing; a grant on it is
	# named in a WARNING, to be run again (granted by the script, it would
	# count as the extension's initial privilege, which pg_dump leaves out)
	$node->safe_psql($db, qq{
		DO \$\$ BEGIN
		    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'upgrade_reader') THEN
		        CREATE ROLE upgrade_reader;
		    END IF;
		END \$\$;
		GRANT EXECUTE ON FUNCTION switchgrid_loadcurve(uuid, text) TO upgrade_reader;
		CREATE VIEW my_curve AS SELECT * FROM switchgrid_loadcurve('$order');});
	my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION switchgrid UPDATE');
	like($err, qr/cannot update switchgrid: switchgrid_loadcurve\(\) is used by view my_curve/,
		"$from: a view over switchgrid_loadcurve() stops the update, and is named");
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'switchgrid'}),
		$from, "$from: still $from");
	$node->safe_psql($db, 'DROP VIEW my_curve');

	($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION switchgrid UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'switchgrid'}),
		$current, "$from: updated to $current");
	like($err, qr/WARNING:.*no longer granted to upgrade_reader.*GRANT EXECUTE ON FUNCTION switchgrid_loadcurve\(uuid, text\) TO upgrade_reader;/s,
		"$from: the update says which grant to run again");
	# the steps of the points stored before: PT30M and PT10M, from their neighbours
	is($node->safe_psql($db, q{
		SELECT count(*) > 0, count(*) FILTER (WHERE step_s IS DISTINCT FROM
		           CASE prm WHEN '09111642617347' THEN 1800 ELSE 600 END)
		FROM switchgrid.loadcurve}),
		't|0', "$from: step_s filled from the neighbours of each stored point");
	is($node->safe_psql($db, q{
		SELECT count(*) FROM switchgrid.loadcurve WHERE wh IS DISTINCT FROM power_w * step_s / 3600}),
		'0', "$from: wh generated");

	for my $t (@tables)
	{
		my ($cols, $fp) = @{ $before{$t} };
		is(fingerprint($db, $t, $t eq 'loadcurve', @$cols), $fp, "$from: every row of switchgrid.$t kept");
	}
	is($node->safe_psql($db, qq{
		SELECT (SELECT count(*) FROM switchgrid_test.loadcurve) || ' '
		    || (SELECT count(*) FROM switchgrid.loadcurve
		        WHERE request_id IN (SELECT request_id FROM switchgrid.requests
		                             WHERE order_id = '$test_order'))
		    || ' ' || (SELECT test_env FROM switchgrid.orders WHERE order_id = '$test_order')}),
		"$test_points 0 true", "$from: the test order's points moved to switchgrid_test.loadcurve");
	is($node->safe_psql($db, q{
		SELECT count(*) FILTER (WHERE since IS NULL) || ' ' || count(*) FILTER (WHERE pg_typeof(since) = 'timestamptz'::regtype)
		FROM switchgrid.requests WHERE type LIKE 'R6%' OR type = 'LOADCURVE'}),
		'0 ' . $node->safe_psql($db, q{
		SELECT count(*) FROM switchgrid.requests WHERE type LIKE 'R6%' OR type = 'LOADCURVE'}),
		"$from: since is a timestamptz, none lost");

	my $schema = schema_of($db);
	if ($schema eq $fresh_schema)
	{
		pass("$from: the updated schema is a fresh install's");
	}
	else
	{
		fail("$from: the updated schema is a fresh install's");
		my $dir = PostgreSQL::Test::Utils::tempdir('schema');
		PostgreSQL::Test::Utils::append_to_file("$dir/fresh.sql", $fresh_schema);
		PostgreSQL::Test::Utils::append_to_file("$dir/updated.sql", $schema);
		diag(`diff -u $dir/fresh.sql $dir/updated.sql`);
	}
	is(members_of($db), $fresh_members, "$from: the same member objects");
	is(config_of($db), $fresh_config, "$from: the same tables dumped with their rows");

	# and the updated extension works
	my $after = $node->safe_psql($db, q{
		SELECT switchgrid_order(switchgrid_request('LOADCURVE', ARRAY['09111642617347'],
		    'CONSUMPTION', '2024-04-01', '2024-04-03')) ->> 'id'});
	is($node->safe_psql($db, "SELECT switchgrid_wait('$after', '60 seconds') ->> 'status'"),
		'SUCCESS', "$from: an order placed after the update is stored");
	is($node->safe_psql($db, q{
		SELECT count(*) FROM switchgrid.loadcurve
		WHERE prm = '09111642617347' AND ts >= '2024-03-30' AND ts < '2024-04-03'}),
		$node->safe_psql($db, q{
		SELECT extract(epoch FROM timestamptz '2024-04-03' - timestamptz '2024-03-30')::int / 1800}),
		"$from: old and new points of one series, none twice");

	# the typed tables work after the update: an R65 order fills
	# switchgrid.daily_energy, one row per Paris day
	my $r65 = $node->safe_psql($db, q{
		SELECT switchgrid_order(switchgrid_request('R65_SYNC', ARRAY['09111642617347'],
		    'SOUTIRAGE', '2024-03-30 00:00 Europe/Paris', '2024-04-02 00:00 Europe/Paris')) ->> 'id'});
	is($node->safe_psql($db, "SELECT switchgrid_wait('$r65', '60 seconds') ->> 'status'"),
		'SUCCESS', "$from: an R65 order placed after the update is stored");
	is($node->safe_psql($db, qq{
		SELECT string_agg(day || ' ' || wh, ',' ORDER BY day) FROM switchgrid.daily_energy
		WHERE request_id IN (SELECT request_id FROM switchgrid.requests WHERE order_id = '$r65')}),
		'2024-03-30 23134,2024-03-31 27170,2024-04-01 21811',
		"$from: its daily energies are in switchgrid.daily_energy");
}

$node->stop;
done_testing();
