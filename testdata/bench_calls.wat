;; bench_calls: loops that call a host function n times, for benchmarks.
;; $params_loop calls wflow_v1.params_get (a 2-byte answer "{}"); $noop_loop
;; calls bench.noop, a host function that does nothing: the baseline.
(module
  (import "wflow_v1" "params_get" (func $params_get (param i32 i32 i32) (result i32)))
  (import "bench" "noop" (func $noop (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "params_loop") (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $params_get (i32.const 64) (i32.const 64) (i32.const 0)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))
  (func (export "noop_loop") (param $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (drop (call $noop (i32.const 64) (i32.const 64) (i32.const 0)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next))))
)
