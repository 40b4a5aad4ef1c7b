;; deep_json: a step spec of 60000 nested brackets: errno invalid_json (3), the parser never recurses into it.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (block $done (loop $fill
      (br_if $done (i32.ge_u (local.get $i) (i32.const 60000)))
      (i32.store8 (local.get $i) (i32.const 91))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $fill)))
    (call $exit (call $step_submit (i32.const 0) (i32.const 60000) (i32.const 60000)))
  )
)
