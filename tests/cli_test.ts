// The services' own option tables through lib/config.ts are in config_test.ts; the exit code 2 of
// a UsageError, through the entry scripts, in entry_test.ts. Here: the parser on a table of its own.
import { strict as assert } from "node:assert";
import {
  booleanOption,
  choiceOption,
  formatHelp,
  httpUrlOption,
  integerOption,
  numberOption,
  type OptionSpecs,
  type OptionValue,
  parseCommandLine,
  stringOption,
  UsageError,
} from "../lib/cli.ts";

const SPECS = {
  count: {
    type: "string",
    env: "COUNT",
    default: "10",
    short: "n",
    placeholder: "N",
    description: "How many.",
  },
  name: { type: "string", env: "NAME", description: "A name, no default." },
  password: { type: "string", env: "PASSWORD", secret: true, description: "A secret." },
  token: { type: "string", env: "TOKEN", description: "Not a secret: no TOKEN_FILE." },
  verbose: { type: "boolean", env: "VERBOSE", description: "Say more." },
  color: { type: "boolean", env: "COLOR", default: "true", description: "Colour the output." },
  empty: { type: "string", default: "", description: "Empty by default." },
} as const satisfies OptionSpecs;

/** Parses `args` with `env` and no file system: `files` are the only files there are. */
function parse(
  args: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
  allowPositionals = false,
) {
  return parseCommandLine(SPECS, args, env, {
    allowPositionals,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
      return text;
    },
  });
}

/** `text` as a regular expression that matches it literally. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** Asserts that `run` throws a UsageError (exit code 2) whose message matches `message`. */
function usageError(run: () => unknown, message: RegExp): UsageError {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  assert.ok(thrown instanceof UsageError, `expected a UsageError, got ${thrown}`);
  assert.equal(thrown.name, "UsageError");
  assert.match(thrown.message, message);
  return thrown;
}

Deno.test("parseCommandLine() takes each option from its flag, else its env variable, else its default, and says which", () => {
  const defaults = parse([]).options;
  assert.deepEqual(defaults.count, { value: "10", label: "--count (default)" });
  assert.deepEqual(defaults.name, { value: undefined, label: "--name (default)" });
  assert.deepEqual(defaults.verbose, { value: false, label: "--verbose (default)" });
  assert.deepEqual(defaults.color, { value: true, label: "--color (default)" });
  assert.deepEqual(defaults.empty, { value: "", label: "--empty (default)" });
  const fromEnv = parse([], { COUNT: "7", NAME: "" }).options;
  assert.deepEqual(fromEnv.count, { value: "7", label: "COUNT" });
  assert.deepEqual(fromEnv.name, { value: "", label: "NAME" }, "an empty variable is a value");
  const fromFlag = parse(["--count", "9"], { COUNT: "7" }).options;
  assert.deepEqual(fromFlag.count, { value: "9", label: "--count" });
});

Deno.test("parseCommandLine() reads --flag value, --flag=value and the short alias alike", () => {
  for (const args of [["--count", "3"], ["--count=3"], ["-n", "3"], ["-n3"]]) {
    assert.equal(parse(args).options.count!.value, "3", args.join(" "));
  }
  // A value that looks like a flag is taken with '='.
  assert.equal(parse(["--name=--verbose"]).options.name!.value, "--verbose");
  // The last of a repeated flag wins.
  assert.equal(parse(["--count", "1", "--count", "2"]).options.count!.value, "2");
});

Deno.test("parseCommandLine() reads a switch as --x or --no-x, and its variable as true or false in any case", () => {
  assert.equal(parse(["--verbose"]).options.verbose!.value, true);
  assert.equal(parse(["--no-verbose"], { VERBOSE: "1" }).options.verbose!.value, false);
  assert.equal(parse(["--no-color"]).options.color!.value, false);
  assert.equal(parse(["--color"], { COLOR: "off" }).options.color!.value, true);
  for (const yes of ["1", "true", "TRUE", "yes", "Yes", "on", " on "]) {
    assert.deepEqual(parse([], { VERBOSE: yes }).options.verbose, {
      value: true,
      label: "VERBOSE",
    });
  }
  for (const no of ["0", "false", "False", "no", "off", "OFF", "", "  "]) {
    assert.deepEqual(parse([], { COLOR: no }).options.color, { value: false, label: "COLOR" });
  }
});

Deno.test("parseCommandLine() refuses a switch variable that is neither true nor false, naming it and the value", () => {
  for (const value of ["2", "maybe", "y", "nope", "enabled"]) {
    usageError(
      () => parse([], { VERBOSE: value }),
      new RegExp(
        `^VERBOSE must be true or false \\(1/0, yes/no\\), got ${literal(JSON.stringify(value))}$`,
      ),
    );
  }
  // A flag given makes the variable unread.
  assert.equal(parse(["--verbose"], { VERBOSE: "maybe" }).options.verbose!.value, true);
});

Deno.test("parseCommandLine() refuses an unknown flag, a flag without its value, a value for a switch and stray arguments", () => {
  usageError(() => parse(["--bogus"]), /Unknown option '--bogus'/);
  usageError(() => parse(["-x"]), /Unknown option '-x'/);
  usageError(() => parse(["--count"]), /--count/);
  usageError(() => parse(["--verbose=yes"]), /--verbose/);
  usageError(() => parse(["--no-count"]), /--no-count/);
  usageError(() => parse(["list"]), /Unexpected argument 'list'/);
  // The parser's own error is kept as the cause.
  assert.ok(usageError(() => parse(["--bogus"]), /bogus/).cause instanceof Error);
});

Deno.test("parseCommandLine() hands back positionals where allowed, -- ending the options", () => {
  const parsed = parse(["list", "--count", "2", "--", "--verbose"], {}, {}, true);
  assert.deepEqual(parsed.positionals, ["list", "--verbose"]);
  assert.equal(parsed.options.count!.value, "2");
  assert.equal(parsed.options.verbose!.value, false);
  assert.deepEqual(parse([], {}, {}, true).positionals, []);
});

Deno.test("parseCommandLine() answers -h and --help besides any other option", () => {
  assert.equal(parse([]).help, false);
  assert.equal(parse(["-h"]).help, true);
  assert.equal(parse(["--count", "3", "--help"]).help, true);
  assert.equal(parse(["--help"], { COUNT: "x" }).options.count!.value, "x");
});

Deno.test("a secret comes from the file <VAR>_FILE names, its one trailing newline dropped", () => {
  const files = {
    "/run/secrets/lf": "s3cret\n",
    "/run/secrets/crlf": "s3cret\r\n",
    "/run/secrets/two": "s3cret\n\n",
    "/run/secrets/bare": "s3cret",
    "/run/secrets/inner": "line one\nline two\n",
  };
  const secret = (file: string) =>
    parse([], { PASSWORD_FILE: file }, files).options.password as OptionValue;
  assert.deepEqual(secret("/run/secrets/lf"), { value: "s3cret", label: "PASSWORD_FILE" });
  assert.equal(secret("/run/secrets/crlf").value, "s3cret");
  assert.equal(secret("/run/secrets/two").value, "s3cret\n", "only the last newline goes");
  assert.equal(secret("/run/secrets/bare").value, "s3cret");
  assert.equal(secret("/run/secrets/inner").value, "line one\nline two");
});

Deno.test("a secret's variable or flag wins over its file, which is then not read", () => {
  const unreadable = { PASSWORD_FILE: "/run/secrets/missing" };
  assert.deepEqual(parse([], { ...unreadable, PASSWORD: "env" }).options.password, {
    value: "env",
    label: "PASSWORD",
  });
  assert.deepEqual(parse(["--password", "flag"], unreadable).options.password, {
    value: "flag",
    label: "--password",
  });
});

Deno.test("<VAR>_FILE is read for secrets only, and an empty one is as good as none", () => {
  const files = { "/run/secrets/t": "from-file\n" };
  assert.deepEqual(parse([], { TOKEN_FILE: "/run/secrets/t" }, files).options.token, {
    value: undefined,
    label: "--token (default)",
  });
  assert.deepEqual(parse([], { PASSWORD_FILE: "" }, files).options.password, {
    value: undefined,
    label: "--password (default)",
  });
});

Deno.test("a <VAR>_FILE that cannot be read stops with a UsageError naming the variable and the file", () => {
  const error = usageError(
    () => parse([], { PASSWORD_FILE: "/run/secrets/missing" }),
    /^PASSWORD_FILE names "\/run\/secrets\/missing", which cannot be read: No such file/,
  );
  assert.ok(error.cause instanceof Deno.errors.NotFound);
});

Deno.test("parseCommandLine() reads a real <VAR>_FILE by default", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "on-disk\n");
    const parsed = parseCommandLine(SPECS, [], { PASSWORD_FILE: path });
    assert.deepEqual(parsed.options.password, { value: "on-disk", label: "PASSWORD_FILE" });
  } finally {
    await Deno.remove(path);
  }
  usageError(
    () => parseCommandLine(SPECS, [], { PASSWORD_FILE: path }),
    /^PASSWORD_FILE names ".*", which cannot be read/,
  );
});

Deno.test("formatHelp() lays out every option with its alias, placeholder, default and variable", () => {
  assert.equal(
    formatHelp("demo [options]", "A demo command.", SPECS),
    `A demo command.

Usage: demo [options]

Options:
  -n, --count <N>
        How many. (default: 10, env: COUNT)
      --name <value>
        A name, no default. (env: NAME)
      --password <value>
        A secret. (env: PASSWORD)
      --token <value>
        Not a secret: no TOKEN_FILE. (env: TOKEN)
      --verbose
        Say more. (env: VERBOSE)
      --no-color
        Colour the output. (env: COLOR)
      --empty <value>
        Empty by default. (default: "")
  -h, --help
        Show this help and exit.
`,
  );
  assert.equal(
    formatHelp("bare", "Nothing to set.", {}),
    "Nothing to set.\n\nUsage: bare\n\nOptions:\n  -h, --help\n        Show this help and exit.\n",
  );
});

Deno.test("stringOption() and booleanOption() read a value, and stringOption() names an option without one", () => {
  assert.equal(stringOption({ value: "x", label: "--name" }), "x");
  assert.equal(stringOption({ value: "", label: "NAME" }), "");
  usageError(
    () => stringOption({ value: undefined, label: "--name (default)" }),
    /^--name \(default\) needs a value$/,
  );
  usageError(() => stringOption({ value: true, label: "--verbose" }), /^--verbose needs a value$/);
  assert.equal(booleanOption({ value: true, label: "--verbose" }), true);
  assert.equal(booleanOption({ value: false, label: "--verbose" }), false);
  assert.equal(booleanOption({ value: "true", label: "VERBOSE" }), false, "only a parsed true");
  assert.equal(booleanOption({ value: undefined, label: "--verbose (default)" }), false);
});

Deno.test("integerOption() takes whole decimal numbers within its bounds, both ends included", () => {
  const read = (value: string) => integerOption({ value, label: "--count" }, -5, 100);
  assert.deepEqual(["-5", "0", "7", " 42 ", "007", "100"].map(read), [-5, 0, 7, 42, 7, 100]);
});

Deno.test("integerOption() refuses anything else, naming the option, its bounds and the value", () => {
  for (
    const value of ["", " ", "abc", "1.5", "4.0", "1e3", "0x10", "+5", "1_000", "101", "-6", "5 5"]
  ) {
    usageError(
      () => integerOption({ value, label: "COUNT" }, -5, 100),
      new RegExp(
        `^COUNT must be an integer from -5 to 100, got ${literal(JSON.stringify(value.trim()))}$`,
      ),
    );
  }
  // Past 2^53 a number is no longer exact: refused even within the bounds.
  usageError(
    () => integerOption({ value: "9007199254740993", label: "--n" }, 0, Number.MAX_VALUE),
    /^--n must be an integer from 0 to .*, got "9007199254740993"$/,
  );
  usageError(() => integerOption({ value: undefined, label: "--n" }, 0, 1), /^--n needs a value$/);
});

Deno.test("numberOption() takes decimals within its bounds and refuses what is not a finite number", () => {
  const read = (value: string) => numberOption({ value, label: "--jitter" }, 0, 1);
  assert.deepEqual(["0", "0.25", " .5 ", "1", "1.0", "1e-1"].map(read), [0, 0.25, 0.5, 1, 1, 0.1]);
  for (const value of ["", "  ", "abc", "1.01", "-0.1", "Infinity", "NaN", "0.5s", "1,5"]) {
    usageError(
      () => read(value),
      new RegExp(
        `^--jitter must be a number from 0 to 1, got ${literal(JSON.stringify(value.trim()))}$`,
      ),
    );
  }
});

Deno.test("choiceOption() takes one of its choices exactly, and lists them when refusing", () => {
  const option = (value: string): OptionValue => ({ value, label: "--backend" });
  assert.equal(choiceOption(option("ttl"), ["ttl", "plugin"]), "ttl");
  for (const value of ["TTL", " ttl", "", "redis"]) {
    usageError(
      () => choiceOption(option(value), ["ttl", "plugin"]),
      new RegExp(`^--backend must be one of ttl, plugin, got ${literal(JSON.stringify(value))}$`),
    );
  }
});

Deno.test("httpUrlOption() takes an http:// or https:// URL as given, and refuses any other", () => {
  const read = (value: string) => httpUrlOption({ value, label: "--management-url" });
  for (const url of ["http://rabbit:15672", "https://u:p@rabbit/api/", "HTTP://RABBIT"]) {
    assert.equal(read(url), url);
  }
  for (
    const url of ["rabbit:15672", "localhost:15672", "ftp://rabbit", "amqp://rabbit", "", "//x"]
  ) {
    usageError(
      () => read(url),
      new RegExp(
        `^--management-url must be an http:// or https:// URL, got ${
          literal(JSON.stringify(url))
        }$`,
      ),
    );
  }
});

Deno.test("httpUrlOption() does not repeat a password it refuses", () => {
  // As the services' URL options do (config_test.ts: "a bad URL is shown without its password").
  const error = usageError(
    () => httpUrlOption({ value: "htps://guest:hunter2@rabbit:15672", label: "--management-url" }),
    /^--management-url must be an http:\/\/ or https:\/\/ URL/,
  );
  assert.ok(!error.message.includes("hunter2"), error.message);
});
