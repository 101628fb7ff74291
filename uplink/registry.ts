/**
 * The sink registry: one line per uplink type, `{schema, load}`. The schema joins the config union
 * (uplink/schema.ts); `load` imports the sink's code lazily, so a gateway loads only the protocol
 * clients it uses (kafkajs and the AWS SDK are heavy on a Pi). To add a type: a folder with
 * `schema.ts` (spread `commonUplinkOptions`), `index.ts` and a README, and one line here.
 */
import type { z } from 'zod';
import { amqpUplinkSchema } from './amqp/schema.js';
import { eventHubsUplinkSchema } from './eventhubs/schema.js';
import { httpUplinkSchema } from './http/schema.js';
import { kafkaUplinkSchema } from './kafka/schema.js';
import { kinesisUplinkSchema } from './kinesis/schema.js';
import { mqttUplinkSchema } from './mqtt/schema.js';
import { natsUplinkSchema } from './nats/schema.js';
import { s3UplinkSchema } from './s3/schema.js';
import type { Sink, SinkContext } from './sink.js';
import { sparkplugUplinkSchema } from './sparkplug/schema.js';

export interface SinkPlugin<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** The sink's constructor, imported on first use. */
  load(): Promise<(config: z.output<S>, ctx: Required<SinkContext>) => Sink>;
}

const plugin = <S extends z.ZodType>(p: SinkPlugin<S>) => p;

export const sinks = {
  mqtt: plugin({ schema: mqttUplinkSchema, load: async () => { const { MqttSink } = await import('./mqtt/index.js'); return (c, ctx) => new MqttSink(c, ctx); } }),
  http: plugin({ schema: httpUplinkSchema, load: async () => { const { HttpSink } = await import('./http/index.js'); return (c, ctx) => new HttpSink(c, ctx); } }),
  nats: plugin({ schema: natsUplinkSchema, load: async () => { const { NatsSink } = await import('./nats/index.js'); return (c, ctx) => new NatsSink(c, ctx); } }),
  amqp: plugin({ schema: amqpUplinkSchema, load: async () => { const { AmqpSink } = await import('./amqp/index.js'); return (c, ctx) => new AmqpSink(c, ctx); } }),
  eventhubs: plugin({ schema: eventHubsUplinkSchema, load: async () => { const { EventHubsSink } = await import('./eventhubs/index.js'); return (c, ctx) => new EventHubsSink(c, ctx); } }),
  kafka: plugin({ schema: kafkaUplinkSchema, load: async () => { const { KafkaSink } = await import('./kafka/index.js'); return (c, ctx) => new KafkaSink(c, ctx); } }),
  kinesis: plugin({ schema: kinesisUplinkSchema, load: async () => { const { KinesisSink } = await import('./kinesis/index.js'); return (c, ctx) => new KinesisSink(c, ctx); } }),
  s3: plugin({ schema: s3UplinkSchema, load: async () => { const { S3Sink } = await import('./s3/index.js'); return (c, ctx) => new S3Sink(c, ctx); } }),
  sparkplug: plugin({ schema: sparkplugUplinkSchema, load: async () => { const { SparkplugSink } = await import('./sparkplug/index.js'); return (c, ctx) => new SparkplugSink(c, ctx); } }),
};

export type SinkType = keyof typeof sinks;
export type SinkSchema = (typeof sinks)[SinkType]['schema'];
