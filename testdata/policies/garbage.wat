;; garbage: decides with bytes that are not JSON (errno invalid_json) and exits: no decision, refused.
(module
  (import "wflow_policy_v1" "decide" (func $decide (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "allow, I guess")
  (func (export "_start") (drop (call $decide (i32.const 0) (i32.const 14))))
)
