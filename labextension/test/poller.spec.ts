import { Poller } from '../src/poller';

/** Let pending promise callbacks run (the poller awaits its tick). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
  }
}

function visibility() {
  let hidden = false;
  let listener: (() => void) | null = null;
  return {
    isHidden: () => hidden,
    onVisibilityChange: (callback: () => void) => {
      listener = callback;
      return () => {
        listener = null;
      };
    },
    set(value: boolean) {
      hidden = value;
      listener?.();
    },
    get subscribed() {
      return listener !== null;
    }
  };
}

describe('Poller', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('polls at once, then every interval', async () => {
    const tick = jest.fn(() => Promise.resolve());
    const poller = new Poller(tick, { intervalMs: 1000, maxIntervalMs: 10_000, ...visibility() });
    poller.start();
    await settle();
    expect(tick).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(999);
    await settle();
    expect(tick).toHaveBeenCalledTimes(1);
    jest.advanceTimersByTime(1);
    await settle();
    expect(tick).toHaveBeenCalledTimes(2);
    poller.stop();
    jest.advanceTimersByTime(5000);
    await settle();
    expect(tick).toHaveBeenCalledTimes(2);
  });

  it('backs off after failures up to the maximum, and recovers', async () => {
    let fail = true;
    const tick = jest.fn(() => (fail ? Promise.reject(new Error('down')) : Promise.resolve()));
    const poller = new Poller(tick, { intervalMs: 1000, maxIntervalMs: 5000, ...visibility() });
    poller.start();
    await settle();
    expect(poller.failures).toBe(1);
    expect(poller.delayMs).toBe(2000);
    jest.advanceTimersByTime(2000);
    await settle();
    expect(poller.delayMs).toBe(4000);
    jest.advanceTimersByTime(4000);
    await settle();
    expect(poller.failures).toBe(3);
    expect(poller.delayMs).toBe(5000);
    fail = false;
    jest.advanceTimersByTime(5000);
    await settle();
    expect(poller.failures).toBe(0);
    expect(poller.delayMs).toBe(1000);
    expect(tick).toHaveBeenCalledTimes(4);
    poller.stop();
  });

  it('pauses while hidden and polls again when shown', async () => {
    const page = visibility();
    const tick = jest.fn(() => Promise.resolve());
    const poller = new Poller(tick, { intervalMs: 1000, maxIntervalMs: 1000, ...page });
    poller.start();
    await settle();
    page.set(true);
    expect(poller.paused).toBe(true);
    jest.advanceTimersByTime(10_000);
    await settle();
    expect(tick).toHaveBeenCalledTimes(1);
    page.set(false);
    await settle();
    expect(tick).toHaveBeenCalledTimes(2);
    poller.stop();
    expect(page.subscribed).toBe(false);
  });

  it('refresh polls now and restarts the wait', async () => {
    const tick = jest.fn(() => Promise.resolve());
    const poller = new Poller(tick, { intervalMs: 1000, maxIntervalMs: 1000, ...visibility() });
    poller.start();
    await settle();
    jest.advanceTimersByTime(600);
    poller.refresh();
    await settle();
    expect(tick).toHaveBeenCalledTimes(2);
    jest.advanceTimersByTime(600);
    await settle();
    expect(tick).toHaveBeenCalledTimes(2);
    jest.advanceTimersByTime(400);
    await settle();
    expect(tick).toHaveBeenCalledTimes(3);
    poller.stop();
  });
});
