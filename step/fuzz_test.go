package step

import (
	"errors"
	"testing"

	"github.com/wflow/wflow/abi"
)

// FuzzParseStep feeds arbitrary bytes to the step decoder: it must never
// panic, must fail only with ErrInvalidJSON or ErrInvalidStep, and a step it
// accepts must satisfy Validate and survive a JSON round trip.
//
//	go test -run '^$' -fuzz FuzzParseStep -fuzztime 2m ./containers
func FuzzParseStep(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","image":"busybox","commands":[["echo","hi"],"echo $$HOME"],"env":{"K":"V"}}`,
		`{"name":"a","image":"b","commands":["x"],"privileged":true}`,
		`{"name":"a","name":"b"}`,
		`[[[[[[[[[[]]]]]]]]]]`,
		"{\"name\":\"\xff\"}",
		`{"name":"a","image":"b","commands":[["a\u0000b"]]}`,
		``, `null`, `{}`, `"str"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, spec []byte) {
		s, err := ParseStep(spec)
		if err != nil {
			if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrInvalidStep) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted an invalid step: %v", err)
		}
		b, err := MarshalJSON(s, false)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseStep(b)
		if err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
		if len(again.Commands) != len(s.Commands) || again.Name != s.Name || again.Image != s.Image {
			t.Fatalf("round trip changed the step: %+v vs %+v", again, s)
		}
	})
}

// FuzzExpandVars checks the substitution never panics and that text with
// no `$` is returned unchanged.
//
//	go test -run '^$' -fuzz FuzzExpandVars -fuzztime 2m ./containers
func FuzzExpandVars(f *testing.F) {
	for _, s := range []string{"$python x", "${python}", "$$", "$", "${", "${}", "a$$$python", "$1", "${a-b}"} {
		f.Add(s)
	}
	vars := map[string]string{"python": "python3", "a": "$b"}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expand(s, vars, func(n, w string) error { return unknownVar(Step{}, n, w) })
		if err == nil && len(out) > len(s)+len(s)*7 {
			t.Fatalf("expansion of %q grew to %d bytes", s, len(out))
		}
	})
}

// FuzzCheckJSON checks the depth guard against arbitrary input: it never
// panics, and whatever it accepts is valid JSON within the depth cap.
//
//	go test -run '^$' -fuzz FuzzCheckJSON -fuzztime 2m ./containers
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, `"\"[[["`, `[[[`, `]]]`, "\"\\", `{"a":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := CheckJSON(b, abi.MaxJSONDepth); err == nil && jsonDepth(b) > abi.MaxJSONDepth {
			t.Fatal("accepted JSON deeper than the cap")
		}
	})
}
