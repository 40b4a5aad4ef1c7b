;; log_too_long: log_write of 64 KiB + 1 bytes: errno too_large (2).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $log_write (i32.const 1) (i32.const 0) (i32.const 65537)))
  )
)
