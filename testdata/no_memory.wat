;; no_memory: calls a host function without exporting any memory.
(module
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (func (export "log_write") (param i32 i32 i32) (result i32)
    (call $log_write (local.get 0) (local.get 1) (local.get 2)))
)
