# switchgrid: the Switchgrid (Enedis data) API from SQL.
#
# Built with PGXS; libcurl is found with curl-config.
#
# The version is set here and nowhere else: the control file's
# default_version, the install script's name and the User-Agent are derived
# from it.  sql/switchgrid.sql is the whole SQL surface of this version; it
# is installed as sql/switchgrid--$(EXTVERSION).sql.  Released install
# scripts (sql/switchgrid--X.Y.Z.sql) and the upgrade steps between them
# (sql/switchgrid--X--Y.sql) are kept as they were released.

EXTENSION = switchgrid
EXTVERSION = 0.2.0

MODULE_big = switchgrid
OBJS = \
	src/switchgrid.o \
	src/guc.o \
	src/http.o \
	src/json_util.o \
	src/input.o \
	src/owner.o \
	src/iso8601.o \
	src/request.o \
	src/api.o \
	src/budget.o \
	src/curveparse.o \
	src/r63parse.o \
	src/loadcurve.o \
	src/store.o \
	src/result.o \
	src/worker.o \
	src/housekeeping.o \
	src/track.o

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
PGFILEDESC = "switchgrid - Switchgrid (Enedis meter data) API client"

# Tests: pg_regress files in test/sql and test/expected, isolation specs in
# test/specs (expected output in test/expected too), TAP in test/t.
# "make installcheck" starts the simulator around pg_regress
# (test/with-simulator), so it runs against any server that preloads the
# library.
REGRESS = init search ask order loadcurve loadcurve_storage data datasets sync tracking errors bad_input security
REGRESS_OPTS = --inputdir=test
# pg_isolation_regress: test/specs and test/expected; the lock order
ISOLATION = order_locks webhook_poll ask_lookup
ISOLATION_OPTS = --inputdir=test
TAP_TESTS = 1
PROVE_TESTS ?= test/t/*.pl

EXTRA_CLEAN = $(EXTENSION).control dist

CURL_CONFIG ?= curl-config
PG_CPPFLAGS = -I$(srcdir)/src $(shell $(CURL_CONFIG) --cflags) -DEXTVERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter
SHLIB_LINK = $(shell $(CURL_CONFIG) --libs)

all: $(EXTENSION).control

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION).control: $(EXTENSION).control.in Makefile
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< >$@

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql Makefile
	sed 's/@EXTVERSION@/$(EXTVERSION)/g' $< >$@

# the User-Agent carries the version
src/http.o: Makefile

# PGXS runs pg_regress as below; the same, inside test/with-simulator.
pg_regress_installcheck = \
	echo "+++ regress install-check in $(CURDIR) (with the simulator) +++" && \
	$(srcdir)/test/with-simulator \
	$(top_builddir)/src/test/regress/pg_regress \
	--inputdir=$(srcdir) \
	--bindir='$(bindir)' \
	$(pg_regress_locale_flags) $(EXTRA_REGRESS_OPTS)

# A release tarball of what git tracks at HEAD, in $(DISTDIR) (default
# dist/): switchgrid-X.Y.Z.tar.gz, unpacking to switchgrid-X.Y.Z/.
DISTDIR ?= dist
dist:
	@mkdir -p $(DISTDIR)
	git archive --format=tar.gz --prefix=$(EXTENSION)-$(EXTVERSION)/ \
		-o $(DISTDIR)/$(EXTENSION)-$(EXTVERSION).tar.gz HEAD
	@echo "$(DISTDIR)/$(EXTENSION)-$(EXTVERSION).tar.gz"

.PHONY: dist
