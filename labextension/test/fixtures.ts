/** A status reply as the server extension sends it. */
export const STATUS = {
  state: 'running',
  reachable: true,
  version: '0.9.0',
  error: null,
  host: 'http://127.0.0.1:11434',
  local: true,
  loaded: [
    {
      name: 'llama3.2:latest',
      size_bytes: 3_000_000_000,
      size_vram_bytes: 1_500_000_000,
      gpu_share: 0.5,
      expires_at: null,
      context_length: 4096,
      parameter_size: '3.2B',
      quantization: 'Q4_K_M'
    }
  ],
  breaker: 'closed',
  profile: null,
  default_model: 'qwen3:0.6b',
  last: { model: 'llama3.2:latest', ts: 1, status: 'ok', decode_tps: 41.25, decode_model: 'llama3.2:latest' },
  manager: { available: true, reason: null }
};
