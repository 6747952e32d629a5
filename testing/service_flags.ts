/**
 * The V8 flags `deno task ordem` runs OrdemDeProducao with (deno.json's `ordem` task), read from
 * the task itself so whatever starts a service in a bench or a fault case runs it as users do.
 *
 * @module
 */

const root = new URL("..", import.meta.url).pathname;

let flags: string[] | undefined;

/** The `--v8-flags` of deno.json's `ordem` task, one flag an element (read once). */
export function serviceV8Flags(): string[] {
  if (flags === undefined) {
    const tasks = JSON.parse(Deno.readTextFileSync(`${root}deno.json`)).tasks;
    flags = /--v8-flags=(\S+)/.exec(String(tasks.ordem))?.[1]?.split(",") ?? [];
  }
  return [...flags];
}
