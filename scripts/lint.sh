#!/bin/sh
# lint.sh - bans C functions that invite overflows or hide errors (as
# curl's checksrc does): strcpy, strcat, sprintf, vsprintf, gets, atoi,
# atol, atof, strtok (use strtok_r).
bad=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atof|strtok)\s*\(' \
	$(find src include tests/unit fuzz -name '*.[ch]' 2>/dev/null) | grep -vE 'snprintf|vsnprintf')
if [ -n "$bad" ]; then
	echo "lint: banned functions:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "lint: ok"
