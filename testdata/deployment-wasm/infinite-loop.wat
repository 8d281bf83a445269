;; Compliant on paper (it imports only `wasi:*`), but `_start` never returns:
;; the smoke harness must stop it by fuel and report it, never hang.
(module
  (import "wasi:cli/exit@0.2.0" "exit" (func $exit (param i32)))
  (func (export "_start")
    (loop $forever
      (br $forever))))
