/**
 * The JSON the ollama_nb server extension sends, and strict parsers for it.
 *
 * Every response is checked here before the UI sees it: a malformed reply (a
 * proxy's HTML page, an older server extension, a truncated body) becomes a
 * `MalformedResponse` error that the views show as one line, instead of an
 * exception deep inside a render. Shapes mirror ollama_nb/jupyter_server_ext/views.py.
 */

export type ServerState = 'running' | 'stopped' | 'unreachable';

export interface LoadedModel {
  name: string;
  sizeBytes: number;
  sizeVramBytes: number;
  gpuShare: number;
  expiresAt: string | null;
  contextLength: number | null;
}

export interface LastRequest {
  model: string;
  status: string;
  decodeTps: number | null;
  decodeModel: string | null;
}

export interface Status {
  state: ServerState;
  reachable: boolean;
  version: string | null;
  error: string | null;
  host: string;
  local: boolean;
  loaded: LoadedModel[];
  breaker: string;
  profile: string | null;
  defaultModel: string | null;
  last: LastRequest | null;
  manager: { available: boolean; reason: string | null };
}

export interface InstalledModel {
  name: string;
  sizeBytes: number;
  family: string;
  parameterSize: string;
  quantization: string;
  capabilities: string[] | null;
  loaded: boolean;
  sizeVramBytes: number;
}

export interface ModelFigures {
  model: string;
  requests: number;
  errors: number;
  p50LatencyS: number | null;
  meanDecodeTps: number | null;
}

export interface MetricsPoint {
  ts: number;
  model: string;
  decodeTps: number;
}

export type Metrics =
  | { available: false; reason: string }
  | {
      available: true;
      window: string;
      requests: number;
      models: ModelFigures[];
      series: MetricsPoint[];
    };

export class MalformedResponse extends Error {
  constructor(what: string, detail: string) {
    super(`The ollama_nb server extension sent a malformed ${what} (${detail}).`);
    this.name = 'MalformedResponse';
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedResponse(what, 'not a JSON object');
  }
  return value as Json;
}

function str(data: Json, key: string, what: string): string {
  const value = data[key];
  if (typeof value !== 'string') {
    throw new MalformedResponse(what, `"${key}" is not a string`);
  }
  return value;
}

function optStr(data: Json, key: string, what: string): string | null {
  const value = data[key];
  if (value === null || value === undefined) {
    return null;
  }
  if (typeof value !== 'string') {
    throw new MalformedResponse(what, `"${key}" is not a string`);
  }
  return value;
}

function num(data: Json, key: string, what: string): number {
  const value = data[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new MalformedResponse(what, `"${key}" is not a number`);
  }
  return value;
}

function optNum(data: Json, key: string, what: string): number | null {
  const value = data[key];
  if (value === null || value === undefined) {
    return null;
  }
  return num(data, key, what);
}

function bool(data: Json, key: string, what: string): boolean {
  const value = data[key];
  if (typeof value !== 'boolean') {
    throw new MalformedResponse(what, `"${key}" is not true or false`);
  }
  return value;
}

function list(data: Json, key: string, what: string): unknown[] {
  const value = data[key];
  if (!Array.isArray(value)) {
    throw new MalformedResponse(what, `"${key}" is not a list`);
  }
  return value;
}

const STATES: ServerState[] = ['running', 'stopped', 'unreachable'];

export function parseLoaded(value: unknown): LoadedModel {
  const d = object(value, 'loaded model');
  return {
    name: str(d, 'name', 'loaded model'),
    sizeBytes: num(d, 'size_bytes', 'loaded model'),
    sizeVramBytes: num(d, 'size_vram_bytes', 'loaded model'),
    gpuShare: num(d, 'gpu_share', 'loaded model'),
    expiresAt: optStr(d, 'expires_at', 'loaded model'),
    contextLength: optNum(d, 'context_length', 'loaded model')
  };
}

export function parseStatus(value: unknown): Status {
  const what = 'status';
  const d = object(value, what);
  const state = str(d, 'state', what) as ServerState;
  if (!STATES.includes(state)) {
    throw new MalformedResponse(what, `unknown state "${state}"`);
  }
  const manager = object(d.manager, 'manager status');
  let last: LastRequest | null = null;
  if (d.last !== null && d.last !== undefined) {
    const l = object(d.last, 'last request');
    last = {
      model: str(l, 'model', 'last request'),
      status: str(l, 'status', 'last request'),
      decodeTps: optNum(l, 'decode_tps', 'last request'),
      decodeModel: optStr(l, 'decode_model', 'last request')
    };
  }
  return {
    state,
    reachable: bool(d, 'reachable', what),
    version: optStr(d, 'version', what),
    error: optStr(d, 'error', what),
    host: str(d, 'host', what),
    local: bool(d, 'local', what),
    loaded: list(d, 'loaded', what).map(parseLoaded),
    breaker: str(d, 'breaker', what),
    profile: optStr(d, 'profile', what),
    defaultModel: optStr(d, 'default_model', what),
    last,
    manager: {
      available: bool(manager, 'available', 'manager status'),
      reason: optStr(manager, 'reason', 'manager status')
    }
  };
}

export function parseModels(value: unknown): InstalledModel[] {
  const what = 'model list';
  return list(object(value, what), 'models', what).map(item => {
    const d = object(item, 'model');
    const caps = d.capabilities;
    if (caps !== null && !(Array.isArray(caps) && caps.every(c => typeof c === 'string'))) {
      throw new MalformedResponse('model', '"capabilities" is not a list of names');
    }
    return {
      name: str(d, 'name', 'model'),
      sizeBytes: num(d, 'size_bytes', 'model'),
      family: str(d, 'family', 'model'),
      parameterSize: str(d, 'parameter_size', 'model'),
      quantization: str(d, 'quantization', 'model'),
      capabilities: caps as string[] | null,
      loaded: bool(d, 'loaded', 'model'),
      sizeVramBytes: num(d, 'size_vram_bytes', 'model')
    };
  });
}

export function parseMetrics(value: unknown): Metrics {
  const what = 'metrics summary';
  const d = object(value, what);
  if (d.available === false) {
    return { available: false, reason: str(d, 'reason', what) };
  }
  return {
    available: true,
    window: str(d, 'window', what),
    requests: num(d, 'requests', what),
    models: list(d, 'models', what).map(item => {
      const m = object(item, 'model figures');
      return {
        model: str(m, 'model', 'model figures'),
        requests: num(m, 'requests', 'model figures'),
        errors: num(m, 'errors', 'model figures'),
        p50LatencyS: optNum(m, 'p50_latency_s', 'model figures'),
        meanDecodeTps: optNum(m, 'mean_decode_tps', 'model figures')
      };
    }),
    series: list(d, 'series', what).map(item => {
      const p = object(item, 'metrics point');
      return {
        ts: num(p, 'ts', 'metrics point'),
        model: str(p, 'model', 'metrics point'),
        decodeTps: num(p, 'decode_tps', 'metrics point')
      };
    })
  };
}

/** What one action (start, stop, warm, unload) answered. */
export interface ActionResult {
  ok: boolean;
  message: string;
}

export function parseAction(value: unknown): ActionResult {
  const d = object(value, 'action reply');
  const ok = d.ok === true;
  const message =
    (typeof d.message === 'string' && d.message) ||
    (typeof d.error === 'string' && d.error) ||
    (typeof d.reason === 'string' && d.reason) ||
    (ok ? 'Done.' : 'The action failed.');
  return { ok, message };
}
