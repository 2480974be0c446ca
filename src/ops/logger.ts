/** Structured JSON logs on stderr (stdout is kept for command output such as verdicts). */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string, name = "tortmatch"): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
}
