;; A module evaluated by context whose heap pointer creeps up on every
;; read (so wflow always sees a heap earlier decisions left) and whose eval
;; always aborts as OPA's allocator does at the memory cap: wflow tries a
;; decision again once on a fresh instance, never more.
(module
  (import "env" "memory" (memory 2))
  (import "env" "opa_abort" (func $abort (param i32)))
  (import "env" "opa_builtin1" (func $b1 (param i32 i32 i32) (result i32)))
  (global $h (mut i32) (i32.const 65536))
  (data (i32.const 1024) "{\"wflow/deny\":0}\00")
  (data (i32.const 2048) "{}\00")
  (data (i32.const 3072) "opa_malloc: failed\00")
  (data (i32.const 4096) "[]\00")
  (func (export "entrypoints") (result i32) (i32.const 1024))
  (func (export "builtins") (result i32) (i32.const 2048))
  (func (export "opa_json_dump") (param i32) (result i32) (local.get 0))
  (func (export "opa_json_parse") (param i32 i32) (result i32) (local.get 0))
  (func (export "opa_malloc") (param i32) (result i32) (i32.const 65536))
  (func (export "opa_heap_ptr_get") (result i32) (global.set $h (i32.add (global.get $h) (i32.const 16))) (global.get $h))
  (func (export "opa_heap_ptr_set") (param i32))
  (func (export "opa_eval_ctx_new") (result i32) (i32.const 8192))
  (func (export "opa_eval_ctx_set_input") (param i32 i32))
  (func (export "opa_eval_ctx_set_data") (param i32 i32))
  (func (export "opa_eval_ctx_set_entrypoint") (param i32 i32))
  (func (export "eval") (param i32) (result i32) (call $abort (i32.const 3072)) (i32.const 0))
  (func (export "opa_eval_ctx_get_result") (param i32) (result i32) (i32.const 4096))
)
