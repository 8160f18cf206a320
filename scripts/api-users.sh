#!/usr/bin/env bash
# Makes the API's two users once per home, like Airflow's first login: `admin` (roles predict and
# admin) and `predict` (predict only), each with a random password. Writes
#   $DRIFTWOOD_HOME/secrets/api-credentials   the scrypt hashes (DRIFTWOOD_API_CREDENTIALS_FILE)
#   $DRIFTWOOD_HOME/secrets/api-passwords     user:password lines, mode 600, for people and scripts
# and prints the path of the first, for `export DRIFTWOOD_API_CREDENTIALS_FILE=$(scripts/api-users.sh)`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
dir="$DRIFTWOOD_HOME/secrets"
creds="$dir/api-credentials"
passwords="$dir/api-passwords"
mkdir -p "$dir"
if [ ! -s "$creds" ] || [ ! -s "$passwords" ]; then
  [ -f serving/dist/bin/hash-password.js ] || { echo "serving/dist is missing: run 'make install' first" >&2; exit 1; }
  umask 077
  : > "$passwords.tmp"; : > "$creds.tmp"
  for entry in admin:predict,admin predict:predict; do
    user=${entry%%:*} roles=${entry#*:}
    password=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | cut -c1-24)
    hash=$(printf '%s' "$password" | node serving/dist/bin/hash-password.js)
    echo "$user:$password" >> "$passwords.tmp"
    echo "$user:$roles:$hash" >> "$creds.tmp"
  done
  mv "$passwords.tmp" "$passwords" && mv "$creds.tmp" "$creds"
fi
echo "$creds"
