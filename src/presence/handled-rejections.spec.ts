import { describe, expect, it, jest } from '@jest/globals';
import { withHandledRejections } from './handled-rejections';

class FakeClient {
  status = 'end';
  published = 0;

  publish(_channel: string, _message: string): Promise<number> {
    this.published += 1;
    return Promise.reject(new Error("Stream isn't writeable"));
  }

  ping(): string {
    return this.status === 'end' ? 'down' : 'PONG';
  }
}

describe('withHandledRejections', () => {
  it('handles fire-and-forget rejections, warning once per outage, and passes everything else through', async () => {
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    const warn = jest.fn();
    const client = withHandledRejections(new FakeClient(), { warn });

    void client.publish('a', 'b');
    void client.publish('a', 'c');
    await expect(client.publish('a', 'd')).rejects.toThrow("Stream isn't writeable");
    await new Promise((resolve) => setImmediate(resolve));

    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0][0])).toContain('publish failed');
    expect(client.published).toBe(3);
    expect(client.status).toBe('end');
    expect(client.ping()).toBe('down');
    expect(unhandled).not.toHaveBeenCalled();
    process.off('unhandledRejection', unhandled);
  });
});
