;; A component whose world uses a type at its top level: `environment-entry` is a
;; type-only import (a kebab name bound to a type), not a capability; the host
;; supplies only the `wasi:cli/environment@0.2.0` instance. Its import modules are
;; therefore [`wasi:cli/environment@0.2.0`], as wasmtime's
;; `Component(...).type.imports(...)` reports them, and it is compliant.
(component
  (type $entry (tuple string string))
  (import "environment-entry" (type $env-entry (eq $entry)))
  (import "wasi:cli/environment@0.2.0" (instance
    (export "entry" (type $e (eq $env-entry)))
    (export "get-environment" (func (result (list $e)))))))
