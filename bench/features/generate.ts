import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { Rng, type Warehouse } from '@driftwood/tasks';

const DAY = 86_400_000;
const PLANS = ['basic', 'standard', 'premium'] as const;
const REGIONS = ['north', 'south', 'east', 'west'] as const;
const TYPES = [
  'session',
  'session',
  'session',
  'session',
  'purchase',
  'support_ticket',
  'payment_failure',
] as const;

export interface BenchData {
  customers: number;
  events: number;
  cutoff: number;
}

/** Streams `rows` lines to a CSV file, respecting back-pressure. */
async function writeCsv(file: string, header: string, rows: Iterable<string>): Promise<void> {
  const out = createWriteStream(file);
  out.write(`${header}\n`);
  for (const line of rows) if (!out.write(`${line}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/**
 * Deterministic synthetic warehouse for the feature benchmark: the same rows go into the SQLite
 * warehouse (for Driftwood) and into CSV files (for the pandas baseline). Events span the 120 days
 * before the cutoff and a few days after it, so the point-in-time filter has work to do; labels
 * fall on both sides of the cutoff, so the churned-before filter and the label have work too.
 */
export async function generate(db: Warehouse, dir: string, data: BenchData, seed = 7): Promise<void> {
  const rng = new Rng(seed);
  const customerRows = function* () {
    for (let i = 0; i < data.customers; i++) {
      const plan = rng.pick(PLANS, [0.5, 0.35, 0.15]);
      const region = rng.pick(REGIONS);
      const charges = Math.round((19 + 30 * rng.next()) * 100) / 100;
      const signup = data.cutoff - rng.int(1, 900) * DAY;
      yield [`C${i}`, signup, plan, region, charges] as const;
    }
  };
  const eventRows = function* () {
    for (let i = 0; i < data.events; i++) {
      const customer = `C${rng.int(0, data.customers)}`;
      const at = data.cutoff - rng.int(-5 * DAY, 120 * DAY);
      const type = rng.pick(TYPES);
      const value =
        type === 'session' ? Math.round(rng.next() * 600) / 10 : Math.round(rng.next() * 5000) / 100;
      yield [i + 1, customer, at, type, value] as const;
    }
  };

  const sqlite = (await db.client.acquireConnection()) as import('better-sqlite3').Database;
  try {
    const insertCustomer = sqlite.prepare(
      `INSERT INTO customers (customer_id, email_token, signup_at, plan, region, monthly_charges, source_key)
       VALUES (?, NULL, ?, ?, ?, ?, 'bench')`,
    );
    const insertEvent = sqlite.prepare(
      `INSERT INTO events (event_id, customer_id, event_time, event_type, value, source_key) VALUES (?, ?, ?, ?, ?, 'bench')`,
    );
    const customers: string[] = [];
    sqlite.transaction(() => {
      for (const c of customerRows()) {
        insertCustomer.run(...c);
        customers.push(c.join(','));
      }
    })();
    await writeCsv(`${dir}/customers.csv`, 'customer_id,signup_at,plan,region,monthly_charges', customers);

    const out = createWriteStream(`${dir}/events.csv`);
    out.write('event_id,customer_id,event_time,event_type,value\n');
    const batch = 100_000;
    const gen = eventRows();
    for (let done = 0; done < data.events; done += batch) {
      const lines: string[] = [];
      sqlite.transaction(() => {
        for (let k = 0; k < batch; k++) {
          const next = gen.next();
          if (next.done) break;
          insertEvent.run(...next.value);
          lines.push(next.value.join(','));
        }
      })();
      if (!out.write(`${lines.join('\n')}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    // Churn labels for one customer in ten, from 30 days before the cutoff to 30 days after it: the
    // build leaves out those gone before the cutoff and labels the rest, on both sides.
    const insertLabel = sqlite.prepare(
      `INSERT INTO labels (customer_id, churned_at, reported_at, source_key) VALUES (?, ?, ?, 'bench')`,
    );
    const labels: string[] = [];
    sqlite.transaction(() => {
      for (let i = 0; i < data.customers; i += 10) {
        const churnedAt = data.cutoff + rng.int(-30 * DAY, 30 * DAY);
        insertLabel.run(`C${i}`, churnedAt, churnedAt + DAY);
        labels.push(`C${i},${churnedAt}`);
      }
    })();
    await writeCsv(`${dir}/labels.csv`, 'customer_id,churned_at', labels);
  } finally {
    await db.client.releaseConnection(sqlite);
  }
}
