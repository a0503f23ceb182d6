# switchgrid: the Switchgrid (Enedis data) API from SQL.
#
# Built with PGXS; libcurl is found with curl-config.

EXTENSION = switchgrid
MODULE_big = switchgrid
OBJS = \
	src/switchgrid.o \
	src/guc.o \
	src/http.o \
	src/json_util.o \
	src/request.o \
	src/api.o \
	src/loadcurve.o \
	src/store.o \
	src/worker.o \
	src/track.o

DATA = sql/switchgrid--0.1.0.sql
PGFILEDESC = "switchgrid - Switchgrid (Enedis meter data) API client"

REGRESS = init search ask order loadcurve data tracking errors security
TAP_TESTS = 1

CURL_CONFIG ?= curl-config
PG_CPPFLAGS = -I$(srcdir)/src $(shell $(CURL_CONFIG) --cflags)
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter
SHLIB_LINK = $(shell $(CURL_CONFIG) --libs)


PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
