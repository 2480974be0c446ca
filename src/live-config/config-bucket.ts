/** The live configuration's KV bucket, made when missing with the deployment's replicas: the one way it is created (the service, `config set`). */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";

export const openConfigBucket = (nc: NatsConnection, bucket: string, replicas: number): Promise<KV> => new Kvm(nc).create(bucket, { replicas });
