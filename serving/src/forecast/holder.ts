import {
  type Candle,
  DriftwoodError,
  type ForecastModel,
  forecastNext,
  loadForecastVersion,
  type MlflowClient,
  type ModelVersion,
} from '@driftwood/tasks';

export interface LoadedForecastModel {
  name: string;
  version: string;
  alias: string;
  loadedAt: number;
  model: ForecastModel;
}

/** A steady series the warm-up forecast runs on: any sane model answers a finite, positive price. */
function flatCandles(n: number): Candle[] {
  const start = Date.UTC(2026, 0, 1);
  return Array.from({ length: n }, (_, i) => ({
    openTime: start + i * 3_600_000,
    open: 100,
    high: 101,
    low: 99,
    close: 100 + (i % 2),
    volume: 10,
  }));
}

/** Loads a forecast version from MLflow and checks it with a warm-up forecast before it may answer. */
export async function loadCheckedForecastVersion(
  mlflow: MlflowClient,
  mv: ModelVersion,
  alias: string,
): Promise<LoadedForecastModel> {
  const model = await loadForecastVersion(mlflow, mv);
  const warm = forecastNext(model, flatCandles(model.state.windowHours + 1));
  if (!Number.isFinite(warm.price) || warm.price <= 0) {
    model.dispose();
    throw new DriftwoodError(
      'MODEL_INVALID',
      `forecast version ${mv.version}: warm-up forecast is ${warm.price}, not a price`,
    );
  }
  return { name: mv.name, version: mv.version, alias, loadedAt: Date.now(), model };
}

/**
 * Holds the forecast model behind a registry alias. It is loaded on first use and the alias is
 * re-read at most every `refreshMs`; a new version replaces the held one only after it loaded and
 * passed its warm-up, so a broken version never answers and the old one keeps serving.
 */
export class ForecastHolder {
  private held: LoadedForecastModel | undefined;
  private checkedAt = 0;
  private pending: Promise<void> | undefined;
  lastError: string | undefined;

  constructor(
    /** The forecast dataset the model answers for (its contract's name). */
    readonly dataset: string,
    private readonly mlflow: MlflowClient,
    readonly modelName: string,
    readonly alias: string,
    private readonly refreshMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async current(): Promise<LoadedForecastModel | undefined> {
    if (!this.held || this.now() - this.checkedAt >= this.refreshMs) {
      this.pending ??= this.refresh().finally(() => {
        this.pending = undefined;
      });
      await this.pending;
    }
    return this.held;
  }

  /** The held model, without reading the alias (listings). */
  loaded(): LoadedForecastModel | undefined {
    return this.held;
  }

  /** Why no forecast model answers, naming the dataset (the 503 message of its routes). */
  notLoaded(): string {
    return `no champion for dataset ${this.dataset} yet (${this.lastError ?? 'not loaded yet'})`;
  }

  /** Reads the alias now, not waiting for `refreshMs` (`/v1/admin/reload` and the webhook). */
  async reload(): Promise<void> {
    this.checkedAt = Number.NEGATIVE_INFINITY;
    await this.current();
  }

  private async refresh(): Promise<void> {
    this.checkedAt = this.now();
    try {
      const mv = await this.mlflow.getVersionByAlias(this.modelName, this.alias);
      if (!mv) {
        this.lastError = `model '${this.modelName}' has no version with alias '${this.alias}'`;
        return;
      }
      if (this.held?.version === mv.version) return;
      const next = await loadCheckedForecastVersion(this.mlflow, mv, this.alias);
      const old = this.held;
      this.held = next;
      this.lastError = undefined;
      old?.model.dispose();
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
    }
  }

  close(): void {
    this.held?.model.dispose();
    this.held = undefined;
  }
}
