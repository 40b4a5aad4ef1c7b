;; bad_verdict: decides with a verdict that is none of allow, deny, amend: refused.
(module
  (import "wflow_policy_v1" "decide" (func $decide (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"verdict\":\"maybe\"}")
  (func (export "_start") (drop (call $decide (i32.const 0) (i32.const 19))))
)
