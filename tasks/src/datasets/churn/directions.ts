/**
 * What the business knows about churn, as signs on the model's inputs: friction (payment failures,
 * support tickets) never lowers the risk, engagement (sessions, minutes, a rising session rate)
 * never raises it. The logistic regression is held to these (monotone constraints) and the
 * promotion gate's directional tests check them on every candidate. Missing-value indicators and
 * everything not listed are free.
 */
const DIRECTIONS: [RegExp, 1 | -1][] = [
  [/^payment_failures_\d+d$/, 1],
  [/^tickets_\d+d$/, 1],
  [/^sessions_\d+d$/, -1],
  [/^minutes_\d+d$/, -1],
  [/^session_rate_trend$/, -1],
];

/** One sign per transform output column (+1, −1 or 0), in the transform's order. */
export function churnSigns(outputs: readonly string[]): Int8Array {
  return Int8Array.from(outputs, (name) => DIRECTIONS.find(([re]) => re.test(name))?.[1] ?? 0);
}
