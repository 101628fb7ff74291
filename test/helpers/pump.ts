/**
 * A simulated pump for multivariate tests: five sensors driven by one load (flow, pressure and motor
 * current follow it; temperature lags it; vibration is noise). Its fault is a correlation break:
 * the flow stops following the load (a worn impeller, a recirculating valve) yet stays inside its
 * own normal range, so no single-sensor detector sees it.
 */
export const PUMP_SENSORS = ['current', 'flow', 'pressure', 'temperature', 'vibration'] as const;
export type PumpReading = Record<(typeof PUMP_SENSORS)[number], number>;

export function simulatedPump(seed = 1): (i: number, faulty?: boolean) => PumpReading {
  let s = seed >>> 0;
  const noise = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  };
  let temp = 0;
  return (i, faulty = false) => {
    const load = Math.sin((2 * Math.PI * i) / 120) + 0.1 * noise();
    const other = Math.sin((2 * Math.PI * i) / 120 + Math.PI) + 0.1 * noise();
    temp += 0.05 * (load - temp);
    const r = (x: number) => Math.round(x * 1000) / 1000;
    return {
      current: r(8 + 1.5 * load + 0.05 * noise()),
      flow: r(10 + 2 * (faulty ? other : load) + 0.1 * noise()),
      pressure: r(3 + 0.5 * load + 0.02 * noise()),
      temperature: r(40 + 2 * temp + 0.1 * noise()),
      vibration: r(1 + 0.05 * noise()),
    };
  };
}
