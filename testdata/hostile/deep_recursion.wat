;; deep_recursion: recurses without end: the Wasm stack overflows, a trap.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $down (param i32) (result i32) (i32.add (i32.const 1) (call $down (local.get 0))))
  (func (export "_start")
    (call $exit (call $down (i32.const 0)))
  )
)
