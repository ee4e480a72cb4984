/**
 * Settles like `work`, or with what `onTimeout` returns (or throws) once `ms` have passed first. Redis calls
 * need this wherever a client may queue a command forever (offline queue, a frozen server); the timer never
 * outlives the race.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
