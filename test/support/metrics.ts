/** The value of one sample in Prometheus text (`name` with its labels, e.g. `x_total{kind="full"}`), or NaN. */
export const metricValue = (text: string, name: string) =>
  Number(text.match(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m"))?.[1] ?? Number.NaN);
