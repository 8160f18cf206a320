import { toCsv } from '../../csv.js';
import { Rng } from '../../random.js';
import { DAY_MS, HOUR_MS, partitionOf } from '../../time.js';
import { activityFactors, type DriftSpec, priceFactor } from './drift.js';

export interface ChurnSimulation {
  start: number;
  hours: number;
  seed: number;
  customers: number;
  /** Hours between a customer cancelling and the label reaching the lake. */
  labelDelayHours: number;
  /** A change of the world from a start hour on (drift.ts); before it the files are the same. */
  driftSpec?: DriftSpec;
}

const PLANS = ['basic', 'standard', 'premium'] as const;
const PLAN_PRICE = { basic: 19, standard: 39, premium: 79 } as const;
const REGIONS = ['north', 'south', 'east', 'west'] as const;

interface Customer {
  id: string;
  email: string;
  signupAt: number;
  plan: (typeof PLANS)[number];
  region: (typeof REGIONS)[number];
  monthlyCharges: number;
  /** Latent propensities that drive both behaviour and churn, so that behaviour predicts churn. */
  engagement: number;
  friction: number;
  /** When the customer started to disengage: activity drops and tickets rise before they cancel. */
  atRiskSince?: number;
  churnedAt?: number;
}

export const CUSTOMER_HEADER = [
  'customer_id',
  'email',
  'signup_at',
  'plan',
  'region',
  'monthly_charges',
] as const;
export const EVENT_HEADER = ['event_id', 'customer_id', 'event_time', 'event_type', 'value'] as const;
export const LABEL_HEADER = ['customer_id', 'churned_at', 'reported_at'] as const;

const iso = (t: number): string => new Date(t).toISOString();

/**
 * Generates realistic customer activity as hourly files keyed by lake path. Pure and deterministic:
 * the same options give byte-identical files. Customers with low engagement and high friction
 * (support tickets, payment failures) are more likely to start disengaging; a disengaging customer
 * uses the product far less and complains more for a few days, then usually cancels. So the signal a
 * model can learn is in the recent activity, not in the label alone.
 */
export function simulateChurn(sim: ChurnSimulation, dataset = 'churn'): Map<string, string> {
  const rng = new Rng(sim.seed);
  const files = new Map<string, string>();
  const customers: Customer[] = [];
  let nextCustomer = 1;
  let nextEvent = 1;
  const pendingLabels: { customer: Customer; reportAt: number }[] = [];

  const newCustomer = (signupAt: number): Customer => {
    const plan = rng.pick(PLANS, [0.5, 0.35, 0.15]);
    const id = `C${String(nextCustomer++).padStart(6, '0')}`;
    const engagement = Math.max(0.05, rng.normal(plan === 'premium' ? 1.2 : 1, 0.45));
    return {
      id,
      email: `${id.toLowerCase()}@example.com`,
      signupAt,
      plan,
      region: rng.pick(REGIONS, [0.3, 0.25, 0.25, 0.2]),
      monthlyCharges:
        Math.round((PLAN_PRICE[plan] + rng.normal(0, 3)) * priceFactor(sim.driftSpec, signupAt) * 100) / 100,
      engagement,
      friction: Math.max(0, rng.normal(0.6, 0.5)),
    };
  };

  for (let i = 0; i < sim.customers; i++) {
    const c = newCustomer(sim.start - rng.int(1, 720) * DAY_MS - rng.int(0, 24) * HOUR_MS);
    // The simulation starts mid-stream: some customers are already disengaging.
    if (rng.next() < 0.05) c.atRiskSince = sim.start - rng.int(0, 72) * HOUR_MS;
    customers.push(c);
  }

  for (let h = 0; h < sim.hours; h++) {
    const hourStart = sim.start + h * HOUR_MS;
    const part = `raw/${dataset}/${partitionOf(hourStart)}`;
    const newRows: Customer[] = h === 0 ? [...customers] : [];
    if (sim.driftSpec && hourStart >= sim.driftSpec.start && hourStart - HOUR_MS < sim.driftSpec.start)
      for (const c of startDrift(sim.driftSpec, customers, sim.seed, hourStart))
        if (!newRows.includes(c)) newRows.push(c);
    const signups = rng.poisson(sim.customers / 1000);
    for (let s = 0; s < signups; s++) {
      const c = newCustomer(hourStart + rng.int(0, 3600) * 1000);
      customers.push(c);
      newRows.push(c);
    }

    const events: (string | number)[][] = [];
    const hourOfDay = new Date(hourStart).getUTCHours();
    const diurnal = 0.4 + 0.6 * Math.sin((Math.PI * Math.max(0, hourOfDay - 6)) / 18) ** 2;
    const rate = activityFactors(sim.driftSpec, hourStart);
    for (const c of customers) {
      if (c.churnedAt !== undefined || c.signupAt > hourStart + HOUR_MS) continue;
      const atRisk = c.atRiskSince !== undefined;
      const engagement = atRisk ? c.engagement * 0.2 : c.engagement;
      const at = (): number => Math.max(hourStart, c.signupAt) + rng.int(0, 3600) * 1000;
      const sessions = rng.poisson(0.12 * engagement * diurnal * rate.sessions);
      for (let s = 0; s < sessions; s++) {
        events.push([
          nextEvent++,
          c.id,
          at(),
          'session',
          Math.round(Math.max(1, rng.normal(12 * engagement, 5)) * 10) / 10,
        ]);
      }
      if (rng.next() < 0.004 * (0.5 + c.friction) * (atRisk ? 4 : 1) * rate.tickets)
        events.push([nextEvent++, c.id, at(), 'support_ticket', 1]);
      if (rng.next() < 0.0015 * c.friction * (c.plan === 'basic' ? 1.5 : 1))
        events.push([nextEvent++, c.id, at(), 'payment_failure', c.monthlyCharges]);
      if (rng.next() < 0.002 * engagement * rate.purchases) {
        events.push([
          nextEvent++,
          c.id,
          at(),
          'purchase',
          Math.round(Math.abs(rng.normal(25, 10)) * 100) / 100,
        ]);
      }
      // Hourly hazard of starting to disengage: about 2% a day for a typical customer, far more with
      // friction; once disengaging, a customer cancels after 2.5 days on average.
      const risk =
        -6.9 +
        1.6 * c.friction -
        1.2 * c.engagement +
        (c.plan === 'basic' ? 0.4 : 0) +
        (c.monthlyCharges > 60 ? 0.3 : 0);
      if (!atRisk && rng.next() < 1 / (1 + Math.exp(-risk))) c.atRiskSince = hourStart;
      if (atRisk && rng.next() < 1 / 60) {
        c.churnedAt = at();
        pendingLabels.push({ customer: c, reportAt: c.churnedAt + sim.labelDelayHours * HOUR_MS });
      }
    }
    events.sort((a, b) => (a[2] as number) - (b[2] as number) || (a[0] as number) - (b[0] as number));

    if (newRows.length > 0) {
      files.set(
        `${part}/customers.csv`,
        toCsv(
          CUSTOMER_HEADER,
          newRows.map((c) => [c.id, c.email, iso(c.signupAt), c.plan, c.region, c.monthlyCharges]),
        ),
      );
    }
    files.set(
      `${part}/events.csv`,
      toCsv(
        EVENT_HEADER,
        events.map((e) => [
          e[0] as number,
          e[1] as string,
          iso(e[2] as number),
          e[3] as string,
          e[4] as number,
        ]),
      ),
    );
    const due = pendingLabels.filter((l) => l.reportAt >= hourStart && l.reportAt < hourStart + HOUR_MS);
    if (due.length > 0) {
      files.set(
        `${part}/labels.csv`,
        toCsv(
          LABEL_HEADER,
          due.map((l) => [l.customer.id, iso(l.customer.churnedAt as number), iso(l.reportAt)]),
        ),
      );
    }
  }
  return files;
}

/**
 * The one-off part of a drift, at its first hour: a price rise or plan moves for the customers who
 * are still active. Returns the customers whose record changed (they are re-sent). Its own seeded
 * generator, so the activity that follows stays the same whichever kinds are on.
 */
function startDrift(drift: DriftSpec, customers: Customer[], seed: number, hourStart: number): Customer[] {
  const rng = new Rng((seed ^ 0x5eed_d21f) >>> 0);
  const changed: Customer[] = [];
  const price = priceFactor(drift, hourStart);
  const upgrade = drift.kinds.plan ?? 0;
  for (const c of customers) {
    if (c.churnedAt !== undefined || c.signupAt > hourStart) continue;
    let touched = false;
    if (upgrade > 0 && c.plan === 'basic' && rng.next() < upgrade) {
      c.plan = 'premium';
      c.monthlyCharges = Math.round((PLAN_PRICE.premium + rng.normal(0, 3)) * 100) / 100;
      touched = true;
    }
    if (price !== 1) {
      c.monthlyCharges = Math.round(c.monthlyCharges * price * 100) / 100;
      touched = true;
    }
    if (touched) changed.push(c);
  }
  return changed;
}
