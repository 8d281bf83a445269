// Edge probe of the tau-ops smoke harness: compile and instantiate each core
// module given on the command line through the host's V8 WebAssembly API
// (Node or Deno), with a stub for every import the module declares. Entry
// points are not called: V8 has no fuel, so running code is wasmtime's job.
// Prints one JSON object per module on stdout.
const isDeno = typeof Deno !== "undefined";
const args = isDeno ? Deno.args : process.argv.slice(2);
const readBytes = isDeno
  ? (path) => Deno.readFile(path)
  : async (path) => (await import("node:fs/promises")).readFile(path);

function stubFor(kind, where) {
  switch (kind) {
    case "function":
      return () => {
        throw new Error(`stub import ${where} called`);
      };
    case "memory":
      return new WebAssembly.Memory({ initial: 1 });
    case "table":
      return new WebAssembly.Table({ initial: 0, element: "anyfunc" });
    case "global":
      return new WebAssembly.Global({ value: "i32", mutable: false }, 0);
    default:
      return undefined;
  }
}

for (const path of args) {
  const result = { path };
  try {
    const bytes = await readBytes(path);
    const module = await WebAssembly.compile(bytes);
    const imports = {};
    const declared = WebAssembly.Module.imports(module);
    for (const imp of declared) {
      imports[imp.module] ??= {};
      imports[imp.module][imp.name] = stubFor(imp.kind, `${imp.module}.${imp.name}`);
    }
    await WebAssembly.instantiate(module, imports);
    result.status = "pass";
    result.detail = `instantiated with ${declared.length} stub import(s), ` +
      `${WebAssembly.Module.exports(module).length} export(s)`;
  } catch (err) {
    result.status = "fail";
    result.detail = String(err && err.message ? err.message : err).split("\n")[0];
  }
  console.log(JSON.stringify(result));
}
