// Edge probe of the tau-ops smoke harness: compile each core module given on
// the command line with the host's V8 WebAssembly API (Node or Deno) and build
// a stub for every import it declares. Nothing is instantiated: instantiating
// runs a module's start function, and V8 has neither fuel nor a memory cap for
// it, so running code stays wasmtime's job (the sandbox). The harness also caps
// V8's heap (--max-old-space-size) and kills the probe after its timeout.
// Prints one JSON object per module on stdout.
const isDeno = typeof Deno !== "undefined";
const args = isDeno ? Deno.args : process.argv.slice(2);
const readBytes = isDeno
  ? (path) => Deno.readFile(path)
  : async (path) => (await import("node:fs/promises")).readFile(path);

const STUB_KINDS = new Set(["function", "memory", "table", "global", "tag"]);

for (const path of args) {
  const result = { path };
  try {
    const bytes = await readBytes(path);
    const module = await WebAssembly.compile(bytes);
    const declared = WebAssembly.Module.imports(module);
    const unknown = declared.filter((imp) => !STUB_KINDS.has(imp.kind));
    if (unknown.length > 0) {
      throw new Error(`no stub for import kind ${unknown[0].kind} (${unknown[0].module})`);
    }
    result.status = "pass";
    result.detail = `compiled; ${declared.length} import(s) stubbable, ` +
      `${WebAssembly.Module.exports(module).length} export(s); not run`;
  } catch (err) {
    result.status = "fail";
    result.detail = String(err && err.message ? err.message : err).split("\n")[0];
  }
  console.log(JSON.stringify(result));
}
