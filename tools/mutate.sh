#!/bin/sh
# Mutation testing: tools/mutate.py does the work (see docs/TESTING.md).
exec /usr/bin/python3 "$(dirname "$0")/mutate.py" "$@"
