;; params_huge_cap: params_get with a 4 GiB capacity near the end of memory: the 2-byte answer fits, ok (0).
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "params_get" (func $params_get (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $params_get (i32.const 65500) (i32.const -1) (i32.const 65400)))
  )
)
