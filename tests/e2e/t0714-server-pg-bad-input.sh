#!/bin/bash
# t0704-server-bad-input.sh with the catalog in a real PostgreSQL server (libpq),
# started by server.sh on a temporary data directory and a loopback port:
# the same schema, migrations and assertions as with SQLite.
FERRY_TEST_DB=pg exec bash "$(dirname "$0")/t0704-server-bad-input.sh"
