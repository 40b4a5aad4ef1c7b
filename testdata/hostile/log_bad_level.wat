;; log_bad_level: log_write at level 7: errno invalid_argument (9).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hi")
  (func (export "_start")
    (call $exit (call $log_write (i32.const 7) (i32.const 0) (i32.const 2)))
  )
)
