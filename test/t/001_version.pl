# The version is set once, in the Makefile (EXTVERSION), and everything that
# names it agrees: the installed control file, META.json, the changelog, the
# install script and the User-Agent the API sees.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use SwitchgridTest;
use Test::More;

my $root = SwitchgridTest::tree_root();
my ($version) = slurp_file("$root/Makefile") =~ /^EXTVERSION\s*=\s*(\S+)/m;
like($version, qr/^\d+\.\d+\.\d+$/, "the Makefile sets EXTVERSION ($version)");

my $meta = decode_json(slurp_file("$root/META.json"));
is($meta->{version}, $version, 'META.json: version');
is($meta->{provides}{switchgrid}{version}, $version, 'META.json: provides.switchgrid.version');
like(slurp_file("$root/CHANGELOG.md"), qr/^## \Q$version\E /m, 'CHANGELOG.md has an entry for it');
unlike(slurp_file("$root/switchgrid.control.in"), qr/default_version = '\d/,
	'the control file template names no version of its own');

# every released version has its install script and a way up to this one
my @scripts = map { s{.*/}{}r } glob("$root/sql/switchgrid--*.sql");
my %full = map { m/^switchgrid--([0-9.]+)\.sql$/ ? ($1 => 1) : () } @scripts;
my %step = map { m/^switchgrid--([0-9.]+)--([0-9.]+)\.sql$/ ? ($1 => $2) : () } @scripts;
for my $old (sort keys %full)
{
	next if $old eq $version;
	my ($v, $hops) = ($old, 0);
	$v = $step{$v} while defined $step{$v} && $hops++ < 100;
	is($v, $version, "$old has a chain of upgrade scripts to $version");
}

my $sim = start_simulator();
my $node = PostgreSQL::Test::Cluster->new('version');
$node->init;
configure_node($node, $sim, 'switchgrid.database' => 'postgres');
$node->start;
is($node->safe_psql('postgres',
		q{SELECT default_version FROM pg_available_extensions WHERE name = 'switchgrid'}),
	$version, 'the installed control file says the same');
$node->safe_psql('postgres', 'CREATE EXTENSION switchgrid');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'switchgrid'}),
	$version, 'CREATE EXTENSION installs it');
$node->safe_psql('postgres',
	q{SELECT count(*) FROM switchgrid_search_contract('Jeanne Dupond', prm => '09111642617347')});
my $log = $sim->control('GET', '/log')->{json};
is($log->[-1]{user_agent}, "switchgrid-postgresql/$version", 'the User-Agent carries it');

$node->stop;
done_testing();
