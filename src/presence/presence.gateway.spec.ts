import { describe, expect, it, jest } from '@jest/globals';
import type { TokenVerifier } from '../auth';
import { PresenceGateway } from './presence.gateway';
import type { ClientEventRegistry } from './client-event-registry';
import type { PresenceService } from './presence.service';
import type { PresenceSockets } from './presence-sockets';

/** Just what handleConnection touches of a socket. */
function fakeSocket(tenantId: string, userId: string) {
  return {
    data: { principal: { tenantId, userId } },
    connected: true,
    join: jest.fn(async (_rooms: string[]) => undefined),
    use: jest.fn(),
    emit: jest.fn(),
    disconnect: jest.fn(),
  };
}

function gateway(presence: Partial<PresenceService>): PresenceGateway {
  const clientEvents = { events: () => new Set(['presence:list']) } as unknown as ClientEventRegistry;
  return new PresenceGateway({} as TokenVerifier, presence as PresenceService, {} as PresenceSockets, clientEvents);
}

describe('PresenceGateway connection handling', () => {
  it('closes the socket, instead of rejecting (which ends the process), when a room name cannot be built', async () => {
    // A principal the verifier would refuse today: the guard is for whatever the next bug lets through.
    const socket = fakeSocket('t\ud800', 'u1');
    const connect = jest.fn(async () => undefined);
    await expect(gateway({ connect }).handleConnection(socket as never)).resolves.toBeUndefined();
    expect(socket.disconnect).toHaveBeenCalledWith(true);
    expect(connect).not.toHaveBeenCalled();
  });

  it('closes the socket when presence itself throws', async () => {
    const socket = fakeSocket('pharmacy-1', 'u1');
    const connect = jest.fn(async () => {
      throw new Error('boom');
    });
    await expect(gateway({ connect }).handleConnection(socket as never)).resolves.toBeUndefined();
    expect(socket.disconnect).toHaveBeenCalledWith(true);
  });

  it('does not throw out of the disconnect handler', () => {
    const disconnect = jest.fn(() => {
      throw new URIError('URI malformed');
    });
    expect(() => gateway({ disconnect }).handleDisconnect(fakeSocket('t\ud800', 'u1') as never)).not.toThrow();
  });

  it('joins the rooms and takes no other action for a good socket', async () => {
    const socket = fakeSocket('pharmacy-1', 'u1');
    await gateway({ connect: async () => undefined, snapshot: async () => [] }).handleConnection(socket as never);
    expect(socket.join).toHaveBeenCalledWith(['tenant:pharmacy-1', 'user:pharmacy-1:u1']);
    expect(socket.disconnect).not.toHaveBeenCalled();
  });
});
