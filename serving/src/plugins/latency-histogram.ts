import type { Aggregator, Metric, Registry } from 'prom-client';

export type LatencyLabels = { method: string; route: string };

interface LatencyValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/** One label set's counts: per bucket (non-cumulative, the last slot is +Inf), sum and count. */
export class LatencySeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<LatencyLabels>,
    private readonly bounds: readonly number[],
    private readonly seen: LatencySeries[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    let i = 0;
    for (const bound of this.bounds) {
      if (seconds <= bound) break;
      i++;
    }
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.sum += seconds;
    // Exposed from the first observation on, in that order, as prom-client's own Histogram does.
    if (this.count++ === 0) this.seen.push(this);
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

export interface LatencyHistogramConfig {
  name: string;
  help: string;
  buckets: readonly number[];
  registers: Registry[];
}

/**
 * A histogram labelled by method and route that counts without label hashing: callers hold their
 * series and observe into it. Read by a prom-client Registry like prom-client's own Histogram, with
 * the same exposition text.
 */
export class LatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator: Aggregator = 'sum';
  private readonly bounds: readonly number[];
  private readonly byKey = new Map<string, LatencySeries>();
  private readonly seen: LatencySeries[] = [];

  constructor(config: LatencyHistogramConfig) {
    this.name = config.name;
    this.help = config.help;
    this.bounds = Object.freeze([...config.buckets].sort((a, b) => a - b));
    // The registry only reads name, type, get() and reset(); its typings list prom-client's classes.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series for one label set, shared by every caller asking for the same labels. */
  series(method: string, route: string): LatencySeries {
    const key = `${method}\u0000${route}`;
    let s = this.byKey.get(key);
    if (!s) {
      s = new LatencySeries({ method, route }, this.bounds, this.seen);
      this.byKey.set(key, s);
    }
    return s;
  }

  reset(): void {
    for (const s of this.seen) s.reset();
    this.seen.length = 0;
  }

  async get(): Promise<{
    name: string;
    help: string;
    type: 'histogram';
    values: LatencyValue[];
    aggregator: Aggregator;
  }> {
    const bucket = `${this.name}_bucket`;
    const values: LatencyValue[] = [];
    for (const s of this.seen) {
      const { method, route } = s.labels;
      let acc = 0;
      for (const [i, le] of this.bounds.entries()) {
        acc += s.counts[i] ?? 0;
        values.push({ labels: { le, method, route }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', method, route }, value: s.count, metricName: bucket });
      values.push({ labels: { method, route }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { method, route }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
