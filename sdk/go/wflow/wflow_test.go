package wflow

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRetrySpec(t *testing.T) {
	for _, c := range []struct {
		retry Retry
		want  string
	}{
		{Retry{Retries: 2}, `"retry":{"retries":2}`},
		{Retry{Retries: 2, Initial: NoDelay}, `"retry":{"retries":2,"initial":"0s"}`},
		{Retry{Retries: 2, Initial: 10 * time.Millisecond, Max: time.Second, Factor: 3}, `"retry":{"retries":2,"initial":"10ms","factor":3,"max":"1s"}`},
	} {
		r := c.retry
		b, err := json.Marshal(Step{Name: "s", Image: "i", Commands: []Command{Shell("x")}, Retry: &r})
		if err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("%+v: %s %v, want %s", c.retry, b, err, c.want)
		}
	}
}

func TestTypedParams(t *testing.T) {
	all := map[string]json.RawMessage{"n": []byte(`3`), "ns": []byte(`"3"`), "f": []byte(`2.5e-3`), "fs": []byte(`"0.5"`),
		"b": []byte(`true`), "bs": []byte(`"false"`), "d": []byte(`"90s"`), "bad": []byte(`"x"`), "frac": []byte(`1.5`),
		"whole": []byte(`3.0`), "e3": []byte(`1e3`), "null": []byte(`null`), "big": []byte(`9007199254740993`), "huge": []byte(`1e300`)}
	for name, want := range map[string]int{"n": 3, "ns": 3, "missing": 7, "null": 7, "whole": 3, "e3": 1000, "big": 9007199254740993} {
		if got, err := paramFrom(all, name, 7, intParam); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"bad", "frac", "b", "huge"} {
		if got, err := paramFrom(all, name, 7, intParam); err == nil || got != 7 || !strings.Contains(err.Error(), "parameter "+name) {
			t.Errorf("%s: %d %v, want an error naming it and the default", name, got, err)
		}
	}
}

func TestParamParsers(t *testing.T) {
	all := map[string]json.RawMessage{"f": []byte(`2.5e-3`), "fs": []byte(`"0.5"`), "b": []byte(`true`), "bs": []byte(`"false"`),
		"d": []byte(`"90s"`), "dn": []byte(`90`)}
	if f, err := paramFrom(all, "f", 0, floatParam); err != nil || f != 2.5e-3 {
		t.Errorf("f: %v %v", f, err)
	}
	if f, err := paramFrom(all, "fs", 0, floatParam); err != nil || f != 0.5 {
		t.Errorf("fs: %v %v", f, err)
	}
	if b, err := paramFrom(all, "b", false, boolParam); err != nil || !b {
		t.Errorf("b: %v %v", b, err)
	}
	if b, err := paramFrom(all, "bs", true, boolParam); err != nil || b {
		t.Errorf("bs: %v %v", b, err)
	}
	if d, err := paramFrom(all, "d", 0, durationParam); err != nil || d != 90*time.Second {
		t.Errorf("d: %v %v", d, err)
	}
	if _, err := paramFrom(all, "dn", 0, durationParam); err == nil {
		t.Error("dn: a number is not a duration")
	}
}
