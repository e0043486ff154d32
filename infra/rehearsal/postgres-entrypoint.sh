#!/bin/bash
# PostgreSQL in the rehearsal, from Debian's postgresql-15, taking the official image's
# settings: POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB, data in /var/lib/postgresql/data
# (postgres.yml's volume); password (scram) logins from the network, as that image allows.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
user=${POSTGRES_USER:-postgres}
mkdir -p "$data" /run/postgresql
chown -R postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp); printf '%s\n' "${POSTGRES_PASSWORD:?}" > "$pwfile"; chown postgres "$pwfile"
  runuser -u postgres -- "$bin/initdb" -D "$data" -U "$user" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$data/pg_hba.conf"
  if [ "${POSTGRES_DB:-$user}" != postgres ]; then
    runuser -u postgres -- "$bin/postgres" --single -D "$data" postgres \
      <<< "CREATE DATABASE \"$POSTGRES_DB\";" >/dev/null
  fi
fi
exec runuser -u postgres -- "$bin/postgres" -D "$data" -c listen_addresses='*'
