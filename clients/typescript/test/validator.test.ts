import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Validator, problemString, SchemaError } from "../src/index.js";
import { pkgRoot } from "./helpers.js";

interface Case {
  params: string;
  /** Params that are not valid UTF-8, base64 (params then shows them with
   * U+FFFD). */
  params_bytes?: string;
  problems: string[];
}

interface Schema {
  name: string;
  schema: string;
  error?: string;
  notes?: string[];
  cases?: Case[];
}

// The schemas and cases come from the Go validator (test/go/validatorcases
// writes and checks the file): the TypeScript validator must word every
// problem, compile error and note the same, in the same order.
const schemas = JSON.parse(readFileSync(path.join(pkgRoot, "test/go/validatorcases/testdata/cases.json"), "utf8")) as Schema[];

test("the cases file is not empty", () => {
  const cases = schemas.flatMap((s) => s.cases ?? []);
  assert.ok(cases.length >= 250, `only ${cases.length} cases`);
  assert.ok(cases.filter((c) => c.params_bytes).length >= 30, "cases of params that are not UTF-8");
  assert.ok(schemas.filter((s) => s.error).length >= 30, "schemas that do not compile");
});

test("problems are worded exactly as the Go validator words them", () => {
  const failures: string[] = [];
  let n = 0;
  for (const s of schemas) {
    if (s.error) continue;
    const v = Validator.compile(s.schema);
    for (const c of s.cases ?? []) {
      n++;
      // Bytes as received: the validator sees what is not UTF-8.
      const params = c.params_bytes ? new Uint8Array(Buffer.from(c.params_bytes, "base64")) : c.params;
      const got = v.validate(params).map(problemString);
      try {
        assert.deepEqual(got, c.problems);
      } catch {
        failures.push(`${s.name}: ${c.params}\n   got: ${JSON.stringify(got)}\n  want: ${JSON.stringify(c.problems)}`);
      }
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${n} cases differ:\n${failures.join("\n")}`);
});

test("schemas the validator cannot read are refused as the Go validator refuses them", () => {
  const failures: string[] = [];
  for (const s of schemas) {
    if (!s.error) continue;
    let got = "compiled";
    try {
      Validator.compile(s.schema);
    } catch (e) {
      got = e instanceof SchemaError ? e.message : `not a SchemaError: ${String(e)}`;
    }
    if (got !== s.error) failures.push(`${s.name}\n   got: ${got}\n  want: ${s.error}`);
  }
  assert.equal(failures.length, 0, failures.join("\n"));
});

test("notes list what is not evaluated, as the Go validator lists them", () => {
  for (const s of schemas) {
    if (s.error) continue;
    assert.deepEqual(Validator.compile(s.schema).notes, s.notes ?? [], s.name);
  }
});

test("patterns JavaScript cannot compile are refused with the keyword and pointer", () => {
  // Go's RE2 words its refusals its own way: only the frame is shared.
  const long = "(".repeat(400);
  assert.throws(() => Validator.compile(`{"properties":{"a":{"pattern":"("}}}`), (e: unknown) => e instanceof SchemaError && e.message.startsWith(`schema at /properties/a: pattern: JavaScript cannot compile "(": `));
  assert.throws(
    () => Validator.compile(`{"properties":{"a":{"pattern":"${long}"}}}`),
    (e: unknown) => e instanceof SchemaError && Buffer.byteLength(e.message) <= "schema at /properties/a: pattern: ".length + 300 + 3 && e.message.endsWith("…"),
    "the message quotes at most 300 bytes of the pattern",
  );
});

test("invalid UTF-8 is seen in bytes; the same text as a string has none", () => {
  const v = Validator.compile({ type: "object", properties: { name: { type: "string" } } });
  const bytes = new Uint8Array([...Buffer.from('{"name":"a'), 0xff, ...Buffer.from('"}')]);
  assert.deepEqual(v.validate(bytes).map(problemString), ["name: invalid UTF-8 in string"]);
  // A JavaScript string is UTF-16: a lone surrogate goes out as U+FFFD.
  assert.deepEqual(v.validate('{"name":"a\ud800"}'), []);
});
