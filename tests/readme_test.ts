/** The README's code map names every entry script and every module of lib/ and its folders. */

import { strict as assert } from "node:assert";

Deno.test("the README's code map names every entry script and lib module", async () => {
  const root = new URL("..", import.meta.url);
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const map = readme.slice(readme.indexOf("## Code map"), readme.indexOf("## More"));
  const missing: string[] = [];
  for (const dir of ["", "lib/"]) {
    for await (const entry of Deno.readDir(new URL(dir || ".", root))) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      if (!map.includes(`\`${dir}${entry.name}\``)) missing.push(`${dir}${entry.name}`);
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
  assert.deepEqual(missing, [], `not in the README's code map: ${missing.join(", ")}`);
  assert.ok(new TextEncoder().encode(readme).length <= 15_360, "the README stays under 15 KB");
});
