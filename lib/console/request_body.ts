/**
 * A request's body read with a cap, shared by the console and by Estoque's stock API: a body
 * that declares more than the cap (`content-length`) is refused before a byte is read, and one
 * that does not (chunked) is read a chunk at a time and refused as soon as it passes the cap, so a
 * large body never sits in memory whole.
 *
 * @module
 */

/** A body over the cap: answer 413. */
export class BodyTooLargeError extends Error {
  /** The cap, in bytes. */
  readonly maxBytes: number;

  /** Creates the error. */
  constructor(maxBytes: number) {
    super(`the request body is larger than ${maxBytes} bytes`);
    this.name = "BodyTooLargeError";
    this.maxBytes = maxBytes;
  }
}

/**
 * The body of `request` as text (UTF-8), at most `maxBytes` bytes.
 *
 * @example
 * ```ts
 * await readBodyText(request, 16_384); // "{...}", or throws BodyTooLargeError
 * ```
 *
 * @throws {BodyTooLargeError} when the body declares or passes more than `maxBytes`; what was
 * not read is cancelled.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw new BodyTooLargeError(maxBytes);
  }
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new BodyTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(body);
}
