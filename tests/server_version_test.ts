import { strict as assert } from "node:assert";
import { serverVersionAtLeast } from "../lib/server_version.ts";

Deno.test("serverVersionAtLeast() compares the releases the suites run on by major and minor number", () => {
  const table: [version: string, atLeast: string, expected: boolean][] = [
    ["3.10.8", "3.9", true],
    ["3.10.8", "3.10", true],
    ["3.10.8", "3.11", false],
    ["3.10.8", "3.13", false],
    ["3.10.8", "4.0", false],
    ["4.0.5", "3.10", true],
    ["4.0.5", "4.0", true],
    ["4.0.5", "4.1", false],
    ["4.0.5", "4.3", false],
    ["4.3.6", "3.13", true],
    ["4.3.6", "4.0", true],
    ["4.3.6", "4.3", true],
    ["4.3.6", "4.4", false],
    ["4.3.6", "5.0", false],
  ];
  for (const [version, atLeast, expected] of table) {
    assert.equal(serverVersionAtLeast(version, atLeast), expected, `${version} >= ${atLeast}`);
  }
});

Deno.test("serverVersionAtLeast() compares numbers, not text: 3.10 comes after 3.9, 10.0 after 9.9", () => {
  assert.equal(serverVersionAtLeast("3.10.0", "3.9"), true);
  assert.equal(serverVersionAtLeast("3.9.29", "3.10"), false);
  assert.equal(serverVersionAtLeast("10.0.0", "9.9"), true);
  assert.equal(serverVersionAtLeast("4.30.0", "4.4"), true);
  assert.equal(serverVersionAtLeast("04.03.0", "4.3"), true, "leading zeros");
});

Deno.test("serverVersionAtLeast() ignores the patch number and any build suffix", () => {
  // Only the release is compared: a patch asked for is not checked.
  assert.equal(serverVersionAtLeast("4.3.0", "4.3.6"), true);
  for (
    const version of ["4.3", "4.3.6+1", "4.3.6+1.g0123abc", "4.3-rc.1", "4.3~beta.2", " 4.3.6 "]
  ) {
    assert.equal(serverVersionAtLeast(version, "4.3"), true, JSON.stringify(version));
    assert.equal(serverVersionAtLeast(version, "4.4"), false, JSON.stringify(version));
  }
});

Deno.test("serverVersionAtLeast() says no for a version it cannot read, on either side", () => {
  for (
    const odd of [
      "unknown",
      "",
      "4",
      "v4.3.6",
      "4.x",
      "4.3beta",
      "four.three",
      "4..3",
      ".4.3",
      "-4.3",
    ]
  ) {
    assert.equal(serverVersionAtLeast(odd, "0.0"), false, `version ${JSON.stringify(odd)}`);
    assert.equal(serverVersionAtLeast("4.3.6", odd), false, `atLeast ${JSON.stringify(odd)}`);
  }
});
