/** Connect to NATS with the configured authentication and TLS; failures never show a secret. */
import { connect, credsAuthenticator, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { redactUrl, type Config } from "../config.js";

export function natsConnectOptions(config: Config, name = "tortmatch"): NodeConnectionOptions {
  const options: NodeConnectionOptions = {
    servers: config.NATS_URL.split(","),
    name,
    maxReconnectAttempts: -1, // reconnect for ever: JetStream keeps the work meanwhile
    // nats.js otherwise builds an Error (stack capture included) per request: ~25% of the CPU per message.
    noAsyncTraces: true,
  };
  if (config.NATS_USER !== undefined) {
    options.user = config.NATS_USER;
    options.pass = config.NATS_PASSWORD;
  }
  if (config.NATS_TOKEN !== undefined) options.token = config.NATS_TOKEN;
  if (config.NATS_CREDS_FILE !== undefined) options.authenticator = credsAuthenticator(readFileSync(config.NATS_CREDS_FILE));
  if (config.NATS_TLS_CA_FILE !== undefined || config.NATS_TLS_CERT_FILE !== undefined) {
    options.tls = {
      ...(config.NATS_TLS_CA_FILE ? { caFile: config.NATS_TLS_CA_FILE } : {}),
      ...(config.NATS_TLS_CERT_FILE ? { certFile: config.NATS_TLS_CERT_FILE, keyFile: config.NATS_TLS_KEY_FILE } : {}),
    };
  }
  return options;
}

/** Connect, or fail with the (redacted) servers and the reason. */
export async function connectNats(config: Config, name?: string): Promise<NatsConnection> {
  try {
    return await connect(natsConnectOptions(config, name));
  } catch (err) {
    let message = (err as Error).message;
    for (const secret of [config.NATS_PASSWORD, config.NATS_TOKEN]) if (secret) message = message.replaceAll(secret, "***");
    throw new Error(`connecting to NATS at ${config.NATS_URL.split(",").map(redactUrl).join(",")} failed: ${message}`, { cause: err });
  }
}

/** Follows the connection's status events (logging disconnects and reconnects): true while connected. */
export function trackConnection(nc: NatsConnection, log?: Logger): () => boolean {
  let connected = !nc.isClosed();
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        connected = false;
        log?.warn({ server: redactUrl(String(s.server)) }, "NATS disconnected; reconnecting (JetStream keeps the work meanwhile)");
      } else if (s.type === "reconnect") {
        connected = true;
        log?.info({ server: redactUrl(String(s.server)) }, "NATS reconnected");
      }
    }
  })().catch(() => {});
  void nc.closed().then(() => (connected = false));
  return () => connected && !nc.isClosed();
}
