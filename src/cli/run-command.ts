/** `tortmatch run`: the live service, until SIGTERM or SIGINT. */
import type { Config } from "../config.js";
import { runMain } from "../main.js";

export async function runCommand(config: Config, opts: { inspect?: string | boolean }): Promise<void> {
  const inspectPort = opts.inspect === undefined || opts.inspect === false ? undefined : opts.inspect === true ? config.TORT_INSPECT_PORT : Number(opts.inspect);
  if (inspectPort !== undefined && !(Number.isInteger(inspectPort) && inspectPort > 0 && inspectPort < 65_536)) {
    throw new Error(`--inspect takes a port number (1..65535), got ${JSON.stringify(opts.inspect)}`);
  }
  process.exitCode = await runMain(config, inspectPort === undefined ? {} : { inspectPort });
}
