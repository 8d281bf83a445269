;; Imports `wasi:*` (so the ABI is there) plus `host_debug`, a module that is
;; on neither list: packaging reports `import_module_not_allowlisted`.
(module
  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $get_stdout (result i32)))
  (import "host_debug" "log" (func $log (param i32 i32)))
  (func (export "_start")))
