/**
 * Calls a function on an interval, backing off after failures and pausing while
 * the page is hidden.
 *
 * Kept free of JupyterLab and DOM globals (the clock, timers and visibility are
 * injected) so its timing rules are unit-tested with fake timers.
 */

export interface PollerOptions {
  /** Milliseconds between polls while things go well. */
  intervalMs: number;
  /** Longest wait after repeated failures. */
  maxIntervalMs: number;
  /** Wait multiplier per consecutive failure. */
  backoff?: number;
  /** Whether the page is hidden now (default: `document.hidden`). */
  isHidden?: () => boolean;
  /** Registers a callback for visibility changes; returns the unsubscribe function. */
  onVisibilityChange?: (callback: () => void) => () => void;
}

function documentHidden(): boolean {
  return typeof document !== 'undefined' && document.hidden;
}

function documentVisibility(callback: () => void): () => void {
  if (typeof document === 'undefined') {
    return () => undefined;
  }
  document.addEventListener('visibilitychange', callback);
  return () => document.removeEventListener('visibilitychange', callback);
}

export class Poller {
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _failures = 0;
  private _running = false;
  private _inFlight = false;
  private _stopVisibility: (() => void) | null = null;
  private _options: Required<PollerOptions>;

  constructor(
    private readonly _tick: () => Promise<void>,
    options: PollerOptions
  ) {
    this._options = {
      backoff: 2,
      isHidden: documentHidden,
      onVisibilityChange: documentVisibility,
      ...options
    };
  }

  /** Milliseconds until the next poll, given the failures so far. */
  get delayMs(): number {
    const { intervalMs, maxIntervalMs, backoff } = this._options;
    return Math.min(maxIntervalMs, intervalMs * Math.pow(backoff, this._failures));
  }

  get failures(): number {
    return this._failures;
  }

  get paused(): boolean {
    return this._running && this._options.isHidden();
  }

  /** Start polling now; a second call does nothing. */
  start(): void {
    if (this._running) {
      return;
    }
    this._running = true;
    this._stopVisibility = this._options.onVisibilityChange(() => {
      if (!this._options.isHidden()) {
        this.refresh();
      }
    });
    void this._run();
  }

  stop(): void {
    this._running = false;
    this._clear();
    this._stopVisibility?.();
    this._stopVisibility = null;
  }

  /** Poll now (after a user action, or when the page shows again) and reset the wait. */
  refresh(): void {
    if (!this._running) {
      return;
    }
    this._clear();
    void this._run();
  }

  /** A new interval takes effect from the next poll. */
  setInterval(intervalMs: number): void {
    this._options.intervalMs = intervalMs;
    this._options.maxIntervalMs = Math.max(this._options.maxIntervalMs, intervalMs);
    this.refresh();
  }

  private _clear(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private async _run(): Promise<void> {
    if (!this._running || this._inFlight) {
      return;
    }
    if (this._options.isHidden()) {
      return; // resumes from the visibility callback
    }
    this._inFlight = true;
    try {
      await this._tick();
      this._failures = 0;
    } catch {
      this._failures += 1;
    } finally {
      this._inFlight = false;
    }
    if (this._running && this._timer === null) {
      this._timer = setTimeout(() => {
        this._timer = null;
        void this._run();
      }, this.delayMs);
    }
  }
}
