// `npm run docs:config`: writes docs/configuration.md from the settings' schema (src/config.ts).
import { writeFileSync } from "node:fs";
import { configurationReference } from "../src/config-reference.js";

const path = new URL("../docs/configuration.md", import.meta.url);
writeFileSync(path, configurationReference());
process.stdout.write(`wrote ${path.pathname}\n`);
