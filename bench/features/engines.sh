#!/usr/bin/env bash
# The feature engines as the hourly pipeline uses them (docs/features.md, "Which engine is the
# default"): simulated hourly landings, then per engine `ingest` of the whole backfill and a
# `features` build, twice; then three more landed hours, each an hourly run's `ingest` + `features`;
# then the copy of the DuckDB engine's Parquet files out of an S3 lake (moto on loopback).
# Settings: BENCH_CUSTOMERS (100000), BENCH_HOURS (720). Prints one line per timed command.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
customers=${BENCH_CUSTOMERS:-100000}
hours=${BENCH_HOURS:-720}
work=$root/.driftwood/bench/engines/$customers-$hours
start=2026-09-01T00:00:00Z
export DRIFTWOOD_PII_KEY=bench-engines-key-0123456789abcdef
at() { date -u -d "$start + $1 hour" +%Y-%m-%dT%H:00:00Z; }
cli() { node "$root/tasks/dist/cli.js" "$@"; }

if [ ! -d "$work/landed" ]; then
  echo "simulating $customers customers, $hours + 3 hours of hourly landings"
  rm -rf "$work" && mkdir -p "$work"
  DRIFTWOOD_LAKE_URI="file://$work/landed" DRIFTWOOD_WAREHOUSE_URL="sqlite://$work/sim.db" \
    cli simulate --dataset churn --start "$start" --hours $((hours + 3)) --seed 7 \
    --customers "$customers" > /dev/null 2>&1
fi

# Lands hour $2's files in engine $1's lake.
land() {
  local part
  part=$(date -u -d "$start + $2 hour" +dt=%Y-%m-%d/hr=%H)
  mkdir -p "$work/$1/lake/raw/churn/$part" && cp "$work/landed/raw/churn/$part/"* "$work/$1/lake/raw/churn/$part/"
}
# A fresh lake and warehouse for engine $1, with the landings of the hours before $2.
fresh() {
  rm -rf "${work:?}/$1" && mkdir -p "$work/$1/lake/raw/churn"
  for ((h = 0; h < $2; h++)); do land "$1" "$h"; done
}
timed() { # engine, label, command…
  local eng=$1 label=$2 w=$work/$1
  shift 2
  DRIFTWOOD_FEATURE_ENGINE=$eng DRIFTWOOD_LAKE_URI="file://$w/lake" DRIFTWOOD_WAREHOUSE_URL="sqlite://$w/wh.db" \
    /usr/bin/time -o "$w/time.txt" -f "$eng $label: %e s wall, %U + %S s CPU, %M KB peak" \
    node "$root/tasks/dist/cli.js" "$@" > "$w/last.log" 2>&1 || { tail -3 "$w/last.log"; exit 1; }
  # The features' id: the same on both engines, or they built different tables.
  echo "$(cat "$w/time.txt")$(grep -o '"id":"[0-9a-f]*"' "$w/last.log" | head -1 | sed 's/^/, /' || true)"
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  for eng in warehouse duckdb; do
    fresh $eng "$hours"
    timed $eng "backfill ingest (round $round)" ingest --dataset churn
    timed $eng "features (round $round)" features --dataset churn --cutoff "$(at $((hours - 24)))"
  done
done
for n in 0 1 2; do
  for eng in warehouse duckdb; do
    land $eng $((hours + n))
    timed $eng "hourly run $((n + 1)): ingest" ingest --dataset churn
    timed $eng "hourly run $((n + 1)): features" features --dataset churn --cutoff "$(at $((hours + n + 1)))"
  done
done

echo "copying the DuckDB engine's files out of an S3 lake (moto on loopback; real S3 adds its latency per GET)"
port=${BENCH_MOTO_PORT:-5898}
.venvs/tools/bin/moto_server -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/moto-api/" > /dev/null && break; sleep 0.2; done
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench BENCH_MOTO_PORT=$port BENCH_LAKE=$work/duckdb/lake \
  node --no-warnings --input-type=module -e "
const { openObjectStore } = await import('$root/tasks/dist/lake/object-store.js');
const { localColumnar } = await import('$root/tasks/dist/warehouse/columnar.js');
const { readdirSync, readFileSync } = await import('node:fs');
const path = await import('node:path');
const { CreateBucketCommand, S3Client } = await import('@aws-sdk/client-s3');
const s3 = { endpoint: 'http://127.0.0.1:' + process.env.BENCH_MOTO_PORT, region: 'us-east-1', forcePathStyle: true };
const client = new S3Client(s3);
await client.send(new CreateBucketCommand({ Bucket: 'engines' }));
client.destroy();
const lake = openObjectStore('s3://engines/lake', s3);
const root = process.env.BENCH_LAKE;
for (const e of readdirSync(path.join(root, 'columnar'), { recursive: true, withFileTypes: true }))
  if (e.isFile()) await lake.put(path.relative(root, path.join(e.parentPath, e.name)), readFileSync(path.join(e.parentPath, e.name)));
for (const table of ['customers', 'labels', 'events']) {
  const t0 = performance.now(), c0 = process.cpuUsage();
  const got = await localColumnar(lake, 'churn', table);
  const c = process.cpuUsage(c0);
  console.log('duckdb S3 copy of ' + table + ': ' + got.files.length + ' files, ' + ((performance.now() - t0) / 1000).toFixed(2) + ' s wall, ' + ((c.user + c.system) / 1e6).toFixed(2) + ' s CPU');
  await got.close();
}"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
