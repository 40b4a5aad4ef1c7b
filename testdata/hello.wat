;; hello: logs a line, sets its output and returns from _start (success).
(module
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "output_set" (func $output_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hello from wat")
  (data (i32.const 32) "{\"greeting\":\"hello\"}")
  (func (export "_start")
    (drop (call $log_write (i32.const 1) (i32.const 0) (i32.const 14)))
    (drop (call $output_set (i32.const 32) (i32.const 20))))
)
