;; decide_twice: allows, then tries to deny: the second call fails (errno invalid_argument), the first decision stands.
(module
  (import "wflow_policy_v1" "decide" (func $decide (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"verdict\":\"allow\"}")
  (data (i32.const 32) "{\"verdict\":\"deny\",\"reason\":\"changed my mind\"}")
  (func (export "_start")
    (drop (call $decide (i32.const 0) (i32.const 19)))
    (drop (call $decide (i32.const 32) (i32.const 44))))
)
