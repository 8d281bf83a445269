;; A core module in the WASI preview 2 style: it imports `wasi:*` interfaces
;; (and the allowlisted `env`), so it is compliant with both runtime profiles.
;; `_start` returns without calling the imports, so it runs in any sandbox.
(module
  (import "wasi:cli/environment@0.2.0" "get-arguments" (func $get_arguments (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $now (result i64)))
  (import "env" "abort" (func $abort))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (loop $count
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $count (i32.lt_u (local.get $i) (i32.const 1000))))))
