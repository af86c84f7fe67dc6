#!/bin/bash
# ferry-test: long
# t0705-server-schedule.sh with the catalog in a real PostgreSQL server (libpq),
# started by server.sh on a temporary data directory and a loopback port:
# the same schema, migrations and assertions as with SQLite.
FERRY_TEST_DB=pg exec bash "$(dirname "$0")/t0705-server-schedule.sh"
