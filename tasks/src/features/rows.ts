/** The raw inputs of one row as a builder makes them and the API takes them: numbers or categories. */
export type RawFeatures = Record<string, number | string | null>;

/**
 * One row of a tabular dataset as the steps pass it on: its id (the customer's for churn; the
 * contract's key column for a `columns` dataset), its raw inputs and its 0/1 label.
 */
export interface LabelledRow {
  customerId: string;
  features: RawFeatures;
  label: 0 | 1;
  /** When the row happened (epoch ms), for builders that know it: what the `time` split orders by. */
  time?: number;
}
