import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Starts MariaDB and NATS, installs Chromium, when missing: `npm test` works on a fresh machine by itself.
    globalSetup: ["test/support/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files each use their own database and streams; two cores.
    maxWorkers: 2,
  },
});
