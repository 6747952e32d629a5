/**
 * The README's code map names every entry script; docs/architecture.md's names every module of lib/
 * and its folders.
 */

import { strict as assert } from "node:assert";

Deno.test("the code maps name every entry script (README) and lib module (docs/architecture.md)", async () => {
  const root = new URL("..", import.meta.url);
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const entries = readme.slice(readme.indexOf("## Code map"), readme.indexOf("## More"));
  const architecture = await Deno.readTextFile(new URL("docs/architecture.md", root));
  const map = architecture.slice(architecture.indexOf("## Code map"));
  const missing: string[] = [];
  for (const [dir, names] of [["", entries], ["lib/", map]] as const) {
    for await (const entry of Deno.readDir(new URL(dir || ".", root))) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      if (!names.includes(`\`${dir}${entry.name}\``)) missing.push(`${dir}${entry.name}`);
    }
  }
  // Modules of a folder of lib/ may share a row: `lib/console/{main,server}.ts`.
  const grouped = [...map.matchAll(/`(lib\/[a-z_]+\/)\{([a-z_,]+)\}\.ts`/g)]
    .flatMap(([, dir, names]) => names!.split(",").map((name) => `${dir}${name}.ts`));
  for await (const folder of Deno.readDir(new URL("lib", root))) {
    if (!folder.isDirectory) continue;
    for await (const entry of Deno.readDir(new URL(`lib/${folder.name}`, root))) {
      const path = `lib/${folder.name}/${entry.name}`;
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      if (!map.includes(`\`${path}\``) && !grouped.includes(path)) missing.push(path);
    }
  }
  assert.deepEqual(missing, [], `not in a code map: ${missing.join(", ")}`);
  assert.ok(new TextEncoder().encode(readme).length <= 15_360, "the README stays under 15 KB");
});
