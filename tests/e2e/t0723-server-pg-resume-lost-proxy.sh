#!/bin/bash
# ferry-test: long
# t0722-server-resume-lost-proxy.sh with the catalog in a real PostgreSQL
# server (libpq), started by server.sh on a temporary data directory and a
# loopback port.
FERRY_TEST_DB=pg exec bash "$(dirname "$0")/t0722-server-resume-lost-proxy.sh"
