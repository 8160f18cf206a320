/** What erasure did in one place (the lake's raw files, the snapshots, MLflow's artifacts, …). */
export interface PlaceReport {
  filesScanned: number;
  filesRewritten: number;
  rowsRemoved: number;
  /** The files (keys, paths or artifact paths) rewritten, replaced or deleted. */
  files: string[];
  /**
   * Files that could not be read as they should; `failed` ones still may name the customer, and
   * `retry` ones will be reachable later (MLflow down, a running process's file).
   */
  problems: { file: string; problem: string; failed?: boolean; retry?: boolean }[];
}

export const emptyPlace = (): PlaceReport => ({
  filesScanned: 0,
  filesRewritten: 0,
  rowsRemoved: 0,
  files: [],
  problems: [],
});
