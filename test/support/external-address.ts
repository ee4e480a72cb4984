import { networkInterfaces } from 'node:os';

/**
 * An IPv4 address of this machine other than loopback, if it has one: to a Redis in protected mode, a connection
 * from it comes "from another machine" (RedisServer's `alsoBind`).
 */
export const externalAddress: string | undefined = Object.values(networkInterfaces())
  .flat()
  .find((address) => address?.family === 'IPv4' && !address.internal)?.address;
