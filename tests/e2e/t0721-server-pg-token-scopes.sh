#!/bin/bash
# t0720-server-token-scopes.sh with the catalog in a real PostgreSQL server
# (libpq), started by server.sh on a temporary data directory and a
# loopback port.
FERRY_TEST_DB=pg exec bash "$(dirname "$0")/t0720-server-token-scopes.sh"
