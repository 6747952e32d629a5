/**
 * Fails (exit 1) when the project's own modules import each other in a cycle, naming each cycle.
 * Reads the module graph of every entry script, test, suite and tool from `deno info --json`.
 *
 *   deno task check:cycles
 *
 * @module
 */

const root = new URL("..", import.meta.url);

interface InfoModule {
  readonly specifier: string;
  readonly dependencies?: readonly { readonly code?: { readonly specifier?: string } }[];
}

/** The local modules imported by each local module, from `deno info --json` of `entry`. */
async function graphOf(entry: string): Promise<Map<string, string[]>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno info ${entry}: ${new TextDecoder().decode(stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(stdout)) as { modules: InfoModule[] };
  const local = (specifier: string) => specifier.startsWith(root.href);
  const graph = new Map<string, string[]>();
  for (const module of info.modules) {
    if (!local(module.specifier)) continue;
    const imports = (module.dependencies ?? []).flatMap((d) => d.code?.specifier ?? [])
      .filter(local);
    graph.set(module.specifier, imports);
  }
  return graph;
}

/** Every cycle in `graph`, each as the list of modules on it (Tarjan's strongly connected parts). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, indices.get(next)!));
      }
    }
    if (low.get(node) === indices.get(node)) {
      const part: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        part.push(member);
      } while (member !== node);
      if (part.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(part.reverse());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

if (import.meta.main) {
  const entries: string[] = [];
  for (const dir of [".", "lib", "tests", "testing", "interop", "faults", "bench", "scripts"]) {
    for await (const entry of Deno.readDir(new URL(`${dir}/`, root))) {
      if (entry.isFile && entry.name.endsWith(".ts")) entries.push(`${dir}/${entry.name}`);
    }
  }
  const graph = new Map<string, string[]>();
  for (const entry of entries) {
    if (graph.has(new URL(entry, root).href)) continue;
    for (const [module, imports] of await graphOf(entry)) graph.set(module, imports);
  }
  const found = cycles(graph);
  const name = (specifier: string) => specifier.slice(root.href.length);
  if (found.length > 0) {
    for (const cycle of found) console.error(`import cycle: ${cycle.map(name).join(" -> ")}`);
    Deno.exit(1);
  }
  console.log(`no import cycle among ${graph.size} modules`);
}
