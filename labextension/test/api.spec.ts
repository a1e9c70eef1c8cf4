import { STATUS } from './fixtures';
import { MalformedResponse, parseAction, parseMetrics, parseModels, parseStatus } from '../src/api';

describe('parseStatus', () => {
  it('reads a full status', () => {
    const status = parseStatus(STATUS);
    expect(status.state).toBe('running');
    expect(status.loaded[0]).toEqual({
      name: 'llama3.2:latest',
      sizeBytes: 3_000_000_000,
      sizeVramBytes: 1_500_000_000,
      gpuShare: 0.5,
      expiresAt: null,
      contextLength: 4096
    });
    expect(status.last?.decodeTps).toBe(41.25);
    expect(status.defaultModel).toBe('qwen3:0.6b');
    expect(status.manager).toEqual({ available: true, reason: null });
  });

  it('accepts a missing last request', () => {
    expect(parseStatus({ ...STATUS, last: null }).last).toBeNull();
  });

  it.each([
    ['an HTML page', '<html>502</html>', 'not a JSON object'],
    ['null', null, 'not a JSON object'],
    ['an unknown state', { ...STATUS, state: 'sleeping' }, 'unknown state "sleeping"'],
    ['a string count', { ...STATUS, reachable: 'yes' }, '"reachable" is not true or false'],
    ['loaded not a list', { ...STATUS, loaded: {} }, '"loaded" is not a list'],
    ['a bad loaded model', { ...STATUS, loaded: [{ name: 'x' }] }, '"size_bytes" is not a number'],
    ['no manager', { ...STATUS, manager: undefined }, 'manager status']
  ])('refuses %s with a one-line reason', (_label, value, reason) => {
    expect(() => parseStatus(value)).toThrow(MalformedResponse);
    expect(() => parseStatus(value)).toThrow(reason);
  });
});

describe('parseModels', () => {
  const model = {
    name: 'gemma3:4b',
    size_bytes: 3_300_000_000,
    family: 'gemma3',
    parameter_size: '4.3B',
    quantization: 'Q4_K_M',
    modified_at: null,
    capabilities: ['completion', 'vision'],
    context_length: 8192,
    loaded: false,
    size_vram_bytes: 0
  };

  it('reads models, keeping unknown capabilities as null', () => {
    const [a, b] = parseModels({ models: [model, { ...model, name: 'x', capabilities: null }] });
    expect(a.capabilities).toEqual(['completion', 'vision']);
    expect(b.capabilities).toBeNull();
  });

  it('refuses capabilities that are not names', () => {
    expect(() => parseModels({ models: [{ ...model, capabilities: [1] }] })).toThrow('capabilities');
  });
});

describe('parseMetrics', () => {
  it('reads "not available" as such', () => {
    expect(parseMetrics({ ok: false, available: false, reason: 'not installed' })).toEqual({
      available: false,
      reason: 'not installed'
    });
  });

  it('reads a summary', () => {
    const metrics = parseMetrics({
      ok: true,
      available: true,
      window: '24h',
      requests: 3,
      models: [{ model: 'm', requests: 3, errors: 1, p50_latency_s: null, mean_decode_tps: 12.5 }],
      last: null,
      series: [{ ts: 1, model: 'm', decode_tps: 12.5 }]
    });
    expect(metrics.available && metrics.models[0]).toEqual({
      model: 'm',
      requests: 3,
      errors: 1,
      p50LatencyS: null,
      meanDecodeTps: 12.5
    });
  });

  it('refuses a point without a number', () => {
    expect(() =>
      parseMetrics({ available: true, window: '1h', requests: 1, models: [], series: [{ ts: 1, model: 'm' }] })
    ).toThrow('"decode_tps" is not a number');
  });
});

describe('parseAction', () => {
  it('takes the message, the error or the reason', () => {
    expect(parseAction({ ok: true, message: 'Started.' })).toEqual({ ok: true, message: 'Started.' });
    expect(parseAction({ ok: false, error: 'Not ours.' })).toEqual({ ok: false, message: 'Not ours.' });
    expect(parseAction({ ok: false, available: false, reason: 'Remote.' })).toEqual({ ok: false, message: 'Remote.' });
    expect(parseAction({})).toEqual({ ok: false, message: 'The action failed.' });
  });
});
