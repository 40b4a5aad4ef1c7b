;; bad_signature: imports log_write with the wrong signature.
(module
  (import "wflow_v1" "log_write" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
)
