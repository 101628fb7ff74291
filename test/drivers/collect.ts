/** A DriverContext for driver tests that keeps every event the driver emits, with ways to look at them. */
import type { DriverContext } from '../../drivers/driver.js';
import type { EventInput } from '../../src/core/event.js';
import { silentLogger } from '../../src/core/log.js';

/** `P`: the payload shape of the readings under test. */
export function collectEvents<P = unknown>(dataDir?: string) {
  const events: EventInput[] = [];
  const ctx: DriverContext = { gatewayId: 'gw-test', logger: silentLogger, dataDir, emit: async (batch) => void events.push(...batch) };
  const last = (topic: string) => events.filter((e) => e.topic === topic).at(-1);
  return {
    events,
    ctx,
    last,
    /** The payload of the last event on `topic`. */
    latest: (topic: string) => last(topic)?.payload as P | undefined,
    count: (topic: string) => events.filter((e) => e.topic === topic).length,
    /** The device states of the status events, in order. */
    states: () => events.filter((e) => e.kind === 'status').map((e) => (e.payload as { state: string }).state),
  };
}
