// Hubble's Kafka metric (the kafka plugin), from the Kafka proxy's L7 records:
//   hubble_kafka_requests_total{topic,api_key,error_code}
// One count per Kafka REQUEST record (the proxy writes one per topic a request names); api_key is
// the record's key name, error_code the code the client got from the proxy (0 forwarded, 29
// refused). Registered on first use in the registry of the FlowMetrics that observes the flow.

import { Counter, type Registry } from 'prom-client';
import type { Flow } from '../flow/types.ts';
import type { MetricHandler, MetricPlugin } from './metrics-api.ts';

/** Hubble's `kafka` plugin (context options are accepted; the labels stay Hubble's). */
export const kafkaPlugin: MetricPlugin = {
  name: 'kafka',
  init(registry: Registry): MetricHandler {
    // registered with the first Kafka request record: absent from /metrics until then
    let requests: Counter<'topic' | 'api_key' | 'error_code'> | undefined;
    return {
      process(f: Flow) {
        const k = f.l7?.kafka;
        if (k === undefined || f.l7?.type !== 'REQUEST') return;
        requests ??= new Counter({
          name: 'hubble_kafka_requests_total',
          help: 'Count of Kafka requests',
          labelNames: ['topic', 'api_key', 'error_code'],
          registers: [registry],
        });
        requests.inc({
          topic: typeof k.topic === 'string' ? k.topic : '',
          api_key: typeof k.api_key === 'string' ? k.api_key : '',
          error_code: String(typeof k.error_code === 'number' ? k.error_code : 0),
        });
      },
    };
  },
};
