/** "850 ms", "12.3 s": how long something lasted, in a log line. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
