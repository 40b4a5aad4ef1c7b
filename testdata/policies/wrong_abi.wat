;; wrong_abi: imports the workflow ABI instead of the policy ABI: refused at load.
(module
  (import "wflow_v1" "log_write" (func (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start"))
)
