/**
 * The sink registry: one case per uplink type, each imported lazily so a gateway loads only the
 * protocol clients it uses (kafkajs and the AWS SDK are heavy on a Pi). To add a type: a folder with
 * `schema.ts` (spread `commonUplinkOptions`) and `index.ts`, a member in uplink/schema.ts, a case here.
 */
import type { Logger } from 'pino';
import type { UplinkConfig } from './schema.js';
import type { Sink } from './sink.js';

export interface SinkContext {
  gatewayId: string;
  logger: Logger;
  /** The gateway's data directory (sinks that keep local state put it under here). */
  dataDir: string;
}

export async function createSink(config: UplinkConfig, ctx: SinkContext): Promise<Sink> {
  switch (config.type) {
    case 'mqtt': {
      const { MqttSink } = await import('./mqtt/index.js');
      return new MqttSink(config, ctx);
    }
    case 'http': {
      const { HttpSink } = await import('./http/index.js');
      return new HttpSink(config, ctx);
    }
    case 'nats': {
      const { NatsSink } = await import('./nats/index.js');
      return new NatsSink(config, ctx);
    }
    case 'amqp': {
      const { AmqpSink } = await import('./amqp/index.js');
      return new AmqpSink(config, ctx);
    }
    case 'eventhubs': {
      const { EventHubsSink } = await import('./eventhubs/index.js');
      return new EventHubsSink(config, ctx);
    }
    case 'kafka': {
      const { KafkaSink } = await import('./kafka/index.js');
      return new KafkaSink(config, ctx);
    }
    case 'kinesis': {
      const { KinesisSink } = await import('./kinesis/index.js');
      return new KinesisSink(config, ctx);
    }
    case 's3': {
      const { S3Sink } = await import('./s3/index.js');
      return new S3Sink(config, ctx);
    }
    case 'sparkplug': {
      const { SparkplugSink } = await import('./sparkplug/index.js');
      return new SparkplugSink(config, ctx);
    }
    default: {
      const type: string = (config as { type: string }).type;
      throw new Error(`uplinks.${(config as { name: string }).name}.type: unknown uplink type "${type}"`);
    }
  }
}

export { readerOptions, UplinkRunner, type UplinkStatus } from './runner.js';
