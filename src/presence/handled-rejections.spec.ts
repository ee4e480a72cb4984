import { describe, expect, it, jest } from '@jest/globals';
import { publisherWithHandledRejections, withHandledRejections } from './handled-rejections';

class FakeClient {
  status = 'end';
  published = 0;
  up = false;

  publish(_channel: string, _message: string | Buffer): Promise<number> {
    this.published += 1;
    return this.up ? Promise.resolve(1) : Promise.reject(new Error("Stream isn't writeable"));
  }

  ping(): string {
    return this.status === 'end' ? 'down' : 'PONG';
  }
}

const settled = () => new Promise((resolve) => setImmediate(resolve));

describe.each([
  ['withHandledRejections (the adapter)', withHandledRejections],
  ['publisherWithHandledRejections (the emitter)', publisherWithHandledRejections],
])('%s', (_name, handle) => {
  it('handles fire-and-forget publish rejections, warning once per outage, and hands back the result', async () => {
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    const warn = jest.fn();
    const fake = new FakeClient();
    const client = handle(fake, { warn });

    void client.publish('a', 'b');
    void client.publish('a', 'c');
    await expect(client.publish('a', 'd')).rejects.toThrow("Stream isn't writeable");
    await settled();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toContain('publish failed');

    // Back up, then down again: a new outage, a new warning.
    fake.up = true;
    await expect(client.publish('a', 'e')).resolves.toBe(1);
    fake.up = false;
    void client.publish('a', 'f');
    await settled();
    expect(warn).toHaveBeenCalledTimes(2);
    expect(fake.published).toBe(5);
    expect(unhandled).not.toHaveBeenCalled();
    process.off('unhandledRejection', unhandled);
  });
});

describe('withHandledRejections', () => {
  it('passes everything else through to the client', () => {
    const client = withHandledRejections(new FakeClient(), { warn: jest.fn() });
    expect(client.status).toBe('end');
    expect(client.ping()).toBe('down');
  });
});
