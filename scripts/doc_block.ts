/**
 * Writing measured results into the docs: the benchmarks and the fault-injection suite each own a
 * block between `<!-- NAME:start -->` and `<!-- NAME:end -->` of one file under docs/.
 *
 * @module
 */

/**
 * Replaces the text between the `NAME` markers of `docs/<file>` with `body`, then formats the file
 * as `deno fmt` wants it (CI checks it; it aligns table columns).
 *
 * @throws {Error} when the file has no such block.
 */
export async function writeDocBlock(file: string, name: string, body: string): Promise<void> {
  const path = new URL(`../docs/${file}`, import.meta.url);
  const text = await Deno.readTextFile(path);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`docs/${file} has no ${start} … ${end} block`);
  await Deno.writeTextFile(path, `${text.slice(0, a)}${start}\n\n${body}\n\n${text.slice(b)}`);
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", path.pathname],
    stdout: "null",
    stderr: "null",
  }).output();
}
