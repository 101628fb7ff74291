/** The fleet component's metrics, on the gateway's registry (reused if an agent is made again on it). */
import { Counter, Gauge, type Registry } from 'prom-client';

function counter<T extends string>(registry: Registry, name: string, help: string, labelNames: T[]): Counter<T> {
  return (
    (registry.getSingleMetric(name) as Counter<T> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  );
}

function gauge(registry: Registry, name: string, help: string): Gauge {
  return (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] });
}

export function fleetMetrics(registry: Registry) {
  return {
    commands: counter(
      registry,
      'sluice_fleet_commands_total',
      'Fleet commands by type and outcome (ok, refused, failed).',
      ['type', 'outcome'],
    ),
    refused: counter(registry, 'sluice_fleet_refused_total', 'Fleet commands refused, by reason.', ['reason']),
    applies: counter(
      registry,
      'sluice_fleet_config_applies_total',
      'config.set outcomes (applied, noop, rolled-back, refused).',
      ['outcome'],
    ),
    connected: gauge(registry, 'sluice_fleet_connected', '1 while the fleet MQTT connection is up.'),
    configVersion: gauge(registry, 'sluice_fleet_config_version', 'Version of the running config.'),
  };
}
export type FleetMetrics = ReturnType<typeof fleetMetrics>;
