/**
 * Before any test: what the tests need on this machine, started or installed
 * when missing — MariaDB and NATS with JetStream on 127.0.0.1 (as the demo
 * does), Debian's Chromium for the status-page test, and Debian's Prometheus
 * (promtool) for the alert rules. `npm test` on a fresh machine needs nothing else.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  const root = fileURLToPath(new URL("../../", import.meta.url));
  for (const script of ["scripts/ensure-services.sh", "scripts/ensure-chromium.sh", "scripts/ensure-prometheus.sh"]) {
    execFileSync("bash", [script], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  }
}
