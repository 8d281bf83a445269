;; A WASI preview 2 component: imports `wasi:cli/exit@0.2.0` and exports
;; `wasi:cli/run@0.2.0`, whose `run` returns `ok`. Compliant with both
;; profiles; the smoke harness instantiates it with WASI p2 and calls `run`.
(component
  (import "wasi:cli/exit@0.2.0" (instance $exit
    (export "exit" (func (param "status" (result))))))
  (core module $main
    (import "wasi:cli/exit@0.2.0" "exit" (func $exit (param i32)))
    (func (export "run") (result i32)
      (i32.const 0)))
  (core func $exit_lowered (canon lower (func $exit "exit")))
  (core instance $exit_core (export "exit" (func $exit_lowered)))
  (core instance $main_inst (instantiate $main
    (with "wasi:cli/exit@0.2.0" (instance $exit_core))))
  (func $run (result (result)) (canon lift (core func $main_inst "run")))
  (instance $run_inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_inst)))
