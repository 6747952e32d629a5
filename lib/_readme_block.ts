/**
 * Writing measured results into README.md: the benchmarks and the fault-injection suite each own
 * a block between `<!-- NAME:start -->` and `<!-- NAME:end -->`.
 *
 * @module
 */

const README = new URL("../README.md", import.meta.url);

/**
 * Replaces the text between the `NAME` markers of README.md with `body`, then formats the file as
 * `deno fmt` wants it (CI checks it; it aligns table columns).
 *
 * @throws {Error} when README.md has no such block.
 */
export async function writeReadmeBlock(name: string, body: string): Promise<void> {
  const readme = await Deno.readTextFile(README);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} … ${end} block`);
  await Deno.writeTextFile(
    README,
    `${readme.slice(0, a)}${start}\n\n${body}\n\n${readme.slice(b)}`,
  );
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", README.pathname],
    stdout: "null",
    stderr: "null",
  }).output();
}
