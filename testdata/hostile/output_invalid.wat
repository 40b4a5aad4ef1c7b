;; output_invalid: output_set of "{": errno invalid_json (3).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "output_set" (func $output_set (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{")
  (func (export "_start")
    (call $exit (call $output_set (i32.const 0) (i32.const 1)))
  )
)
