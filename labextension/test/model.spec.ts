import { sparkline } from '../src/dom';
import { FetchJson, OllamaModel, formatBytes } from '../src/model';
import { STATUS } from './fixtures';

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await Promise.resolve();
  }
}

const SHOW = { model: true, tokensPerSecond: true };
const still = { isHidden: () => false, onVisibilityChange: () => () => undefined };

function server(routes: Record<string, unknown | (() => unknown)>) {
  const calls: string[] = [];
  const fetch: FetchJson = async (path, init) => {
    calls.push(`${init?.method ?? 'GET'} ${path}${init?.body ? ' ' + init.body : ''}`);
    const route = routes[path];
    if (route === undefined) {
      throw new Error(`HTTP 404 for ${path}`);
    }
    return typeof route === 'function' ? route() : route;
  };
  return { fetch, calls };
}

describe('OllamaModel', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('shows state, the last model and its decode speed', async () => {
    const { fetch } = server({ status: STATUS });
    const model = new OllamaModel(fetch, 5000, still);
    const seen = jest.fn();
    model.subscribe(seen);
    expect(model.statusText(SHOW)).toBe('Ollama: …');
    model.start();
    await settle();
    expect(seen).toHaveBeenCalled();
    expect(model.statusText(SHOW)).toBe('Ollama: running · llama3.2:latest · 41.3 tok/s');
    expect(model.statusText({ model: false, tokensPerSecond: false })).toBe('Ollama: running');
    model.dispose();
  });

  it('falls back to the default model and hides speed when not running', async () => {
    const { fetch } = server({
      status: { ...STATUS, state: 'unreachable', reachable: false, loaded: [], last: null }
    });
    const model = new OllamaModel(fetch, 5000, still);
    model.start();
    await settle();
    expect(model.statusText(SHOW)).toBe('Ollama: unreachable · qwen3:0.6b');
    model.dispose();
  });

  it('turns a malformed reply into an error and recovers on the next poll', async () => {
    let reply: unknown = '<html>Bad Gateway</html>';
    const { fetch } = server({ status: () => reply });
    const model = new OllamaModel(fetch, 1000, still);
    model.start();
    await settle();
    expect(model.statusText(SHOW)).toBe('Ollama: error');
    expect(model.error).toContain('malformed status');
    expect(model.poller.failures).toBe(1);
    reply = STATUS;
    jest.advanceTimersByTime(model.poller.delayMs);
    await settle();
    expect(model.error).toBeNull();
    expect(model.status?.state).toBe('running');
    model.dispose();
  });

  it('fetches models and metrics only while the sidebar wants them', async () => {
    const { fetch, calls } = server({
      status: STATUS,
      models: { models: [] },
      metrics: { ok: false, available: false, reason: 'The ollama_nb metrics store is not installed.' }
    });
    const model = new OllamaModel(fetch, 1000, still);
    model.start();
    await settle();
    expect(calls).toEqual(['GET status']);
    model.setDetailsWanted(true);
    await settle();
    expect(calls).toEqual(['GET status', 'GET status', 'GET models', 'GET metrics']);
    expect(model.models).toEqual([]);
    expect(model.metrics).toEqual({ available: false, reason: 'The ollama_nb metrics store is not installed.' });
    model.dispose();
  });

  it('keeps a failing models request to its own section', async () => {
    const { fetch } = server({ status: STATUS, metrics: { available: false, reason: 'x' } });
    const model = new OllamaModel(fetch, 1000, still);
    model.setDetailsWanted(true);
    model.start();
    await settle();
    expect(model.error).toBeNull();
    expect(model.modelsError).toBe('HTTP 404 for models');
    expect(model.metrics).toEqual({ available: false, reason: 'x' });
    model.dispose();
  });

  it('posts actions with the model and reports their outcome', async () => {
    const { fetch, calls } = server({
      status: STATUS,
      'models/warm': { ok: true, model: 'gemma3:4b', message: 'Loaded gemma3:4b in 1.20 s.' },
      'server/stop': { ok: false, available: true, error: 'Not started by ollama_nb.' }
    });
    const model = new OllamaModel(fetch, 60_000, still);
    model.start();
    await settle();
    await expect(model.act('warm', 'gemma3:4b')).resolves.toEqual({
      ok: true,
      message: 'Loaded gemma3:4b in 1.20 s.'
    });
    expect(calls).toContain('POST models/warm {"model":"gemma3:4b"}');
    await expect(model.act('stop')).resolves.toEqual({ ok: false, message: 'Not started by ollama_nb.' });
    await expect(model.act('unload', 'x')).resolves.toEqual({ ok: false, message: 'HTTP 404 for models/unload' });
    expect(model.busy).toBe(false);
    await settle();
    // Each action polls the status again at once.
    expect(calls.filter(c => c === 'GET status').length).toBeGreaterThanOrEqual(3);
    model.dispose();
  });
});

describe('formatting', () => {
  it('formats bytes in decimal units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2_019_393_189)).toBe('2.0 GB');
    expect(formatBytes(1_500_000)).toBe('1.5 MB');
  });

  it('draws one point per value, scaled into the box', () => {
    const svg = sparkline([10, 20, 40], 100, 50);
    const points = svg.querySelector('polyline')?.getAttribute('points')?.split(' ');
    expect(points).toEqual(['2.0,36.5', '50.0,25.0', '98.0,2.0']);
    expect(svg.querySelector('title')?.textContent).toBe('3 requests, 0.0–40.0 tok/s');
    expect(sparkline([]).querySelector('polyline')).toBeNull();
  });
});
