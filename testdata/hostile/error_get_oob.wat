;; error_get_oob: makes a call fail, then asks for the message with len_ptr out of bounds: errno fault (1).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (import "wflow_v1" "error_get" (func $error_get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $log_write (i32.const 9) (i32.const 0) (i32.const 0)))
    (call $exit (call $error_get (i32.const 0) (i32.const 100) (i32.const 65535)))
  )
)
