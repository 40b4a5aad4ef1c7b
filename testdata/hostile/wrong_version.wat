;; wrong_version: imports a future ABI version, which this wflow must refuse by name.
(module
  (import "wflow_v2" "step_run" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
)
