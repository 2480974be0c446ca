/** tortmatch's own version, from its package.json (the NATS service registration carries it). */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function readVersion(): string {
  // src/version.ts in the sources, dist/src/version.js once built.
  for (const path of ["../package.json", "../../package.json"]) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === "tortmatch" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return "0.0.0";
}

export const TORTMATCH_VERSION = readVersion();
