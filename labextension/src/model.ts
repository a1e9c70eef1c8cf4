/**
 * The state both views read: server status (polled), installed models and the
 * metrics summary (fetched while the sidebar is open), and the actions.
 *
 * No JupyterLab imports: requests go through an injected `fetchJson`, so the
 * logic is unit-tested without a server, and a failing or malformed reply turns
 * into `error` text rather than an exception in a view.
 */

import {
  ActionResult,
  InstalledModel,
  Metrics,
  Status,
  parseAction,
  parseMetrics,
  parseModels,
  parseStatus
} from './api';
import { Poller } from './poller';

export type FetchJson = (path: string, init?: { method?: string; body?: string }) => Promise<unknown>;

/** What the status bar item may show besides the server state. */
export interface ShowOptions {
  model: boolean;
  tokensPerSecond: boolean;
}

export type Action = 'start' | 'stop' | 'warm' | 'unload';

export class OllamaModel {
  status: Status | null = null;
  /** Why the last status poll failed (the Jupyter server or our extension, not Ollama). */
  error: string | null = null;
  models: InstalledModel[] | null = null;
  modelsError: string | null = null;
  metrics: Metrics | null = null;
  metricsError: string | null = null;
  /** The last action's outcome, shown in the sidebar until the next one. */
  lastAction: ActionResult | null = null;
  busy = false;
  detailsWanted = false;

  private _listeners = new Set<() => void>();
  private _poller: Poller;

  constructor(
    private readonly _fetch: FetchJson,
    intervalMs: number,
    pollerOptions: Partial<ConstructorParameters<typeof Poller>[1]> = {}
  ) {
    this._poller = new Poller(() => this._poll(), {
      intervalMs,
      maxIntervalMs: Math.max(60_000, intervalMs),
      ...pollerOptions
    });
  }

  get poller(): Poller {
    return this._poller;
  }

  subscribe(listener: () => void): () => void {
    this._listeners.add(listener);
    return () => this._listeners.delete(listener);
  }

  start(): void {
    this._poller.start();
  }

  dispose(): void {
    this._poller.stop();
    this._listeners.clear();
  }

  setInterval(intervalMs: number): void {
    this._poller.setInterval(intervalMs);
  }

  /** The sidebar asks for models and metrics only while it is open. */
  setDetailsWanted(wanted: boolean): void {
    this.detailsWanted = wanted;
    if (wanted) {
      this._poller.refresh();
    }
  }

  refresh(): void {
    this._poller.refresh();
  }

  /** The model to name in the status bar: the one used last, else the default. */
  get currentModel(): string | null {
    const s = this.status;
    if (!s) {
      return null;
    }
    return s.last?.model ?? s.defaultModel ?? s.loaded[0]?.name ?? null;
  }

  /** One line for the status bar. */
  statusText(show: ShowOptions): string {
    if (this.error !== null) {
      return 'Ollama: error';
    }
    if (this.status === null) {
      return 'Ollama: …';
    }
    const parts = [`Ollama: ${this.status.state}`];
    const model = this.currentModel;
    if (show.model && model) {
      parts.push(model);
    }
    const tps = this.status.last?.decodeTps;
    if (show.tokensPerSecond && this.status.state === 'running' && typeof tps === 'number') {
      parts.push(`${tps.toFixed(1)} tok/s`);
    }
    return parts.join(' · ');
  }

  async act(action: Action, model?: string): Promise<ActionResult> {
    const path = action === 'start' || action === 'stop' ? `server/${action}` : `models/${action}`;
    this.busy = true;
    this._emit();
    try {
      const reply = await this._fetch(path, {
        method: 'POST',
        body: JSON.stringify(model ? { model } : {})
      });
      this.lastAction = parseAction(reply);
    } catch (error) {
      this.lastAction = { ok: false, message: describe(error) };
    } finally {
      this.busy = false;
    }
    this._poller.refresh();
    this._emit();
    return this.lastAction;
  }

  private async _poll(): Promise<void> {
    let failure: unknown = null;
    try {
      this.status = parseStatus(await this._fetch('status'));
      this.error = null;
    } catch (error) {
      this.error = describe(error);
      failure = error;
    }
    if (this.detailsWanted) {
      await this._details();
    }
    this._emit();
    if (failure !== null) {
      throw failure; // the poller backs off
    }
  }

  private async _details(): Promise<void> {
    const [models, metrics] = await Promise.allSettled([
      this.status?.reachable ? this._fetch('models') : Promise.resolve({ models: [] }),
      this._fetch('metrics')
    ]);
    if (models.status === 'fulfilled') {
      try {
        this.models = parseModels(models.value);
        this.modelsError = null;
      } catch (error) {
        this.modelsError = describe(error);
      }
    } else {
      this.modelsError = describe(models.reason);
    }
    if (metrics.status === 'fulfilled') {
      try {
        this.metrics = parseMetrics(metrics.value);
        this.metricsError = null;
      } catch (error) {
        this.metricsError = describe(error);
      }
    } else {
      this.metricsError = describe(metrics.reason);
    }
  }

  private _emit(): void {
    for (const listener of [...this._listeners]) {
      try {
        listener();
      } catch (error) {
        console.error('ollama_nb: a view failed to update', error);
      }
    }
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/** Bytes as a person reads them (decimal units, like Ollama's own CLI). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
