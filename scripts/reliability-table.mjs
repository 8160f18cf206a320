#!/usr/bin/env node
// Prints the reliability suite's rows (tests/support/reliability.ts) as a goal-vs-measured table
// and exits 1 if any row missed its goal or none were recorded.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const file =
  process.env.DRIFTWOOD_RELIABILITY_ROWS ??
  path.join(import.meta.dirname, '..', '.driftwood', 'test', 'reliability.jsonl');
let rows = [];
try {
  rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
} catch (err) {
  console.error(`reliability: no rows in ${file} (${err.code ?? err.message})`);
  process.exit(1);
}
const cols = ['check', 'goal', 'measured', 'result'];
const cells = rows.map((r) => [r.check, r.goal, r.measured, r.ok ? 'met' : 'MISSED']);
const width = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
const line = (row) => `| ${row.map((v, i) => v.padEnd(width[i])).join(' | ')} |`;
console.log(`reliability suite (scale: ${rows[0]?.scale ?? 'ci'})`);
console.log(line(cols));
console.log(`|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of cells) console.log(line(row));
process.exit(rows.length > 0 && rows.every((r) => r.ok) ? 0 : 1);
