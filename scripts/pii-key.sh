#!/usr/bin/env bash
# Makes the PII tokenisation key once per home (a secret: 32 random bytes, mode 600, never in the
# repo) and prints its path, for `export DRIFTWOOD_PII_KEY_FILE=$(scripts/pii-key.sh)`.
source "$(dirname "$0")/lib.sh"
key="$DRIFTWOOD_HOME/secrets/pii.key"
mkdir -p "$(dirname "$key")"
[ -s "$key" ] || (umask 077 && head -c 32 /dev/urandom | base64 > "$key")
echo "$key"
