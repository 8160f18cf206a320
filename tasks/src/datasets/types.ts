/** What `simulate` asks of a dataset's simulator; each takes the parts it has a use for. */
export interface SimulationRequest {
  dataset: string;
  start: number;
  hours: number;
  seed: number;
  /** How many entities (customers, …) a simulated world holds. */
  entities: number;
  labelDelayHours: number;
  /** Share of files given one anomaly; 0 or unset leaves the files clean. */
  anomalies?: number;
  /** A change of the simulated world from a time on, in the simulator's own words (`--drift`). */
  drift?: { spec: string; from: number };
}

export interface SimulatedFiles {
  /** File bodies by lake key (`raw/<dataset>/dt=…/hr=…/<file>`). */
  files: Map<string, string>;
  /** The anomalies planted, by file and kind. */
  planted: { key: string; kind: string }[];
}

/** Generates realistic raw files for datasets built the way its folder knows. */
export interface DatasetSimulator {
  /** What it writes, for messages. */
  describe: string;
  /** Checks a request before any file is written (e.g. a drift spec it cannot read). */
  check(request: SimulationRequest): void;
  simulate(request: SimulationRequest): SimulatedFiles;
}
