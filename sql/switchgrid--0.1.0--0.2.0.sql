/* switchgrid--0.1.0--0.2.0.sql: from version 0.1.0 to 0.2.0 */

\echo Use "ALTER EXTENSION switchgrid UPDATE TO '0.2.0'" to load this file. \quit

-- Each change below is also in sql/switchgrid.sql, so that an updated
-- database and a fresh install of 0.2.0 have the same schema (checked by
-- test/t/060_upgrade.pl).  New columns go at the end of their table in both.
