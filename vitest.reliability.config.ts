import { defineConfig } from "vitest/config";

/** The reliability suite: crashes, outages, scale-out, hostile input. One file at a time; each prints its figures. */
export default defineConfig({
  test: {
    // Starts MariaDB and NATS, installs Chromium, when missing: `npm test` works on a fresh machine by itself.
    globalSetup: ["test/support/global-setup.ts"],
    include: ["reliability/**/*.test.ts"],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
