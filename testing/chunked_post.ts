/**
 * A body that never ends, as a client that streams one would send it: for the servers' caps on
 * what they read (413 as soon as a body passes its cap, before it is read whole).
 *
 * @module
 */

/**
 * Posts `total` bytes of chunked body to `path` over a raw connection, a chunk at a time, until the
 * server answers or everything is sent; resolves with the status and how much was sent.
 */
export async function postChunked(
  port: number,
  path: string,
  headers: Record<string, string>,
  total: number,
): Promise<{ status: number; sent: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const encoder = new TextEncoder();
    const head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n` +
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") +
      "transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
    await conn.write(encoder.encode(head));
    const answered = (async () => {
      const buffer = new Uint8Array(4096);
      const read = await conn.read(buffer).catch(() => null);
      const text = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    })();
    let status: number | undefined;
    answered.then((s) => (status = s));
    const size = 64 * 1024;
    const chunk = encoder.encode(`${size.toString(16)}\r\n${" ".repeat(size)}\r\n`);
    let sent = 0;
    while (sent < total && status === undefined) {
      const wrote = conn.write(chunk).then(() => true, () => false);
      if (!await Promise.race([wrote, answered.then(() => false)])) break;
      sent += size;
    }
    return { status: await answered, sent };
  } finally {
    conn.close();
  }
}
