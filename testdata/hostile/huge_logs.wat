;; huge_logs: writes 200 log lines of 64 KiB each (the maximum): all accepted, exit 0.
;; Hostile corpus: cmd/wflow/hostile_test.go holds what each must end with.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wflow_v1" "log_write" (func $log_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $i i32)
    (memory.fill (i32.const 0) (i32.const 120) (i32.const 65536))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const 200)))
      (drop (call $log_write (i32.const 1) (i32.const 0) (i32.const 65536)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $exit (i32.const 0))
  )
)
