;; submit_flood: submits 100000 steps, ignoring every error: the step budget (--max-steps) ends it.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "step_submit" (func $step_submit (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\22name\22:\22f\22,\22image\22:\22wflow-test/absent\22,\22commands\22:[[\22true\22]]}")
  (func (export "_start")
    (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 100000)))
      (drop (call $step_submit (i32.const 0) (i32.const 62) (i32.const 60000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $exit (i32.const 0))
  )
)
