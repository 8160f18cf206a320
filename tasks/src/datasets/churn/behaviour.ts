import {
  type BehaviourCheck,
  countViolations,
  DIRECTION_TOLERANCE,
  invarianceCheck,
  num,
  quantile,
  type Scorer,
} from '../../evaluate/behaviour.js';
import type { Row } from '../../features/transform.js';

/** Two more failed payments, in every window that counts them. */
function morePaymentFailures(r: Row): Row {
  const out: Row = { ...r, payment_failures_30d: num(r.payment_failures_30d) + 2 };
  if ('payment_failures_90d' in r) out.payment_failures_90d = num(r.payment_failures_90d) + 2;
  return out;
}

/**
 * The same customer with one session fewer in the last 3 days (rows without one are left as they
 * are): every window that counts it loses it, the minutes go with it at the customer's own average
 * length and the trend follows, so the counterfactual is a customer that could exist. A small,
 * consistent change (as in CheckList's directional tests) probes the model where it has data.
 */
function oneSessionFewer(r: Row): Row {
  if (num(r.sessions_3d) < 1) return r;
  const avg = num(r.sessions_30d) > 0 ? num(r.minutes_30d) / num(r.sessions_30d) : 0;
  const out: Row = { ...r };
  const minus = (key: string, by: number) => {
    if (typeof r[key] === 'number') out[key] = Math.max(0, num(r[key]) - by);
  };
  for (const key of ['sessions_3d', 'sessions_7d', 'sessions_30d', 'sessions_90d']) minus(key, 1);
  for (const key of ['minutes_7d', 'minutes_30d', 'minutes_90d']) minus(key, avg);
  if (typeof r.session_rate_trend === 'number') out.session_rate_trend = r.session_rate_trend - 1 / 7;
  return out;
}

/** The churner of the minimum-functionality cases: no session at all in the last week. */
function noSessionsLastWeek(r: Row): Row {
  const s7 = num(r.sessions_7d);
  const out: Row = { ...r, sessions_3d: 0, sessions_7d: 0, minutes_7d: 0 };
  if (typeof r.session_rate_trend === 'number') out.session_rate_trend = r.session_rate_trend - s7 / 7;
  return out;
}

/**
 * The behavioural tests a churn model must pass before it may serve (after Ribeiro et al.,
 * "Beyond Accuracy: Behavioral Testing of NLP Models with CheckList", 2020):
 * - invariance: the customer id and PII fields (email) never change the prediction;
 * - directional: more payment failures, or one recent session fewer, never lower churn risk;
 * - minimum functionality: an obviously disengaged, friction-heavy customer is classified as a
 *   churner and an obviously engaged one is not, at the model's own threshold.
 */
export function churnBehaviourChecks(
  rows: readonly Row[],
  score: Scorer,
  threshold: number,
): BehaviourCheck[] {
  const checks: BehaviourCheck[] = [
    invarianceCheck(
      rows,
      score,
      { customer_id: 'C-INVARIANCE-0000', email: 'someone.else@example.com' },
      'invariant_to_customer_id_and_pii',
    ),
  ];

  const notLower = (a: number, b: number) => b >= a - DIRECTION_TOLERANCE;
  const moreFailures = countViolations(rows, score, morePaymentFailures, notLower);
  checks.push({
    name: 'more_payment_failures_never_lower_risk',
    kind: 'directional',
    passed: moreFailures.failures === 0,
    cases: rows.length,
    failures: moreFailures.failures,
    detail:
      moreFailures.failures === 0
        ? 'two more payment failures never lowered the score'
        : `${moreFailures.failures} scores dropped (by up to ${moreFailures.worst.toFixed(4)})`,
  });
  const fewerSessions = countViolations(rows, score, oneSessionFewer, notLower);
  checks.push({
    name: 'fewer_recent_sessions_never_lower_risk',
    kind: 'directional',
    passed: fewerSessions.failures === 0,
    cases: rows.length,
    failures: fewerSessions.failures,
    detail:
      fewerSessions.failures === 0
        ? 'one session fewer in the last 3 days never lowered the score'
        : `${fewerSessions.failures} scores dropped (by up to ${fewerSessions.worst.toFixed(4)})`,
  });

  // Obvious cases: the holdout's median customer, pushed to the extremes of its own ranges.
  const col = (name: string) => rows.map((r) => num(r[name]));
  const plans = [...new Set(rows.map((r) => String(r.plan)))].sort();
  const numericKeys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) =>
    rows.some((r) => typeof r[k] === 'number'),
  );
  const median: Row = Object.fromEntries(numericKeys.map((k) => [k, quantile(col(k), 0.5)]));
  const at = (name: string, q: number) => quantile(col(name), q);
  const churner = (plan: string): Row =>
    noSessionsLastWeek({
      ...median,
      plan,
      region: String(rows[0]?.region ?? ''),
      tenure_days: at('tenure_days', 0.1),
      sessions_30d: 0,
      sessions_90d: 0,
      minutes_30d: 0,
      minutes_90d: 0,
      avg_session_minutes_30d: null,
      tickets_7d: at('tickets_7d', 0.99) + 1,
      tickets_30d: at('tickets_30d', 0.99) + 2,
      tickets_90d: at('tickets_90d', 0.99) + 2,
      payment_failures_30d: at('payment_failures_30d', 0.99) + 2,
      payment_failures_90d: at('payment_failures_90d', 0.99) + 2,
      purchases_30d: 0,
      spend_30d: 0,
      hours_since_last_session: at('hours_since_last_session', 0.99),
    });
  const loyal = (plan: string): Row => ({
    ...median,
    plan,
    region: String(rows[0]?.region ?? ''),
    tenure_days: at('tenure_days', 0.9),
    sessions_3d: at('sessions_3d', 0.95),
    sessions_7d: at('sessions_7d', 0.95),
    sessions_30d: at('sessions_30d', 0.95),
    sessions_90d: at('sessions_90d', 0.95),
    minutes_7d: at('minutes_7d', 0.95),
    minutes_30d: at('minutes_30d', 0.95),
    minutes_90d: at('minutes_90d', 0.95),
    tickets_7d: 0,
    tickets_30d: 0,
    tickets_90d: 0,
    payment_failures_30d: 0,
    payment_failures_90d: 0,
    purchases_30d: at('purchases_30d', 0.9),
    hours_since_last_session: 1,
    session_rate_trend: at('session_rate_trend', 0.9),
  });
  const wrong: string[] = [];
  for (const plan of plans) {
    const c = score(churner(plan));
    const l = score(loyal(plan));
    if (!(c >= threshold))
      wrong.push(`obvious churner on ${plan} scored ${c.toFixed(3)} < ${threshold.toFixed(3)}`);
    if (!(l < threshold))
      wrong.push(`obviously engaged customer on ${plan} scored ${l.toFixed(3)} ≥ ${threshold.toFixed(3)}`);
  }
  checks.push({
    name: 'obvious_cases_classified_right',
    kind: 'minimum_functionality',
    passed: wrong.length === 0 && plans.length > 0,
    cases: plans.length * 2,
    failures: plans.length === 0 ? 1 : wrong.length,
    detail:
      plans.length === 0
        ? 'no rows to build cases from'
        : wrong.length === 0
          ? 'all obvious cases right'
          : wrong.join('; '),
  });
  return checks;
}
