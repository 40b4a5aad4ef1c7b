;; unknown_import: imports a function ABI v1 does not have and a module wflow does not provide.
(module
  (import "wflow_v1" "step_teleport" (func (param i32) (result i32)))
  (import "env" "host_exec" (func (param i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
)
