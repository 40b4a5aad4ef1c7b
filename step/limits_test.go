package step

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStepLimits(t *testing.T) {
	s, err := ParseStep([]byte(`{"name":"a","image":"b","commands":["x"],"timeout":"90s","cpus":1.5,"memory":"512m",
		"pids":100,"network":"bridge","read_only":true,"user":"1000:1000",
		"retry":{"retries":3,"initial":"2s","factor":3,"max":60,"on_exit_codes":[75],"on_error_kinds":["timeout"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{Timeout: Duration(90 * time.Second), CPUs: 1.5, Memory: 512 << 20, Pids: 100, Network: "bridge", ReadOnly: true, User: "1000:1000"}
	if s.Limits != want {
		t.Errorf("limits %+v, want %+v", s.Limits, want)
	}
	r := s.Retry
	if r == nil || r.Retries != 3 || r.Initial != Duration(2*time.Second) || r.Factor != 3 || r.Max != Duration(time.Minute) ||
		len(r.OnExitCodes) != 1 || r.OnExitCodes[0] != 75 || len(r.OnErrorKinds) != 1 {
		t.Errorf("retry %+v", r)
	}
	if n, err := ParseStep([]byte(`{"name":"a","image":"b","commands":["x"],"timeout":2.5,"memory":7340032}`)); err != nil ||
		n.Timeout != Duration(2500*time.Millisecond) || n.Memory != 7<<20 {
		t.Errorf("numeric forms: %+v, %v", n.Limits, err)
	}
}

func TestParseStepLimitsRejects(t *testing.T) {
	for _, c := range []struct{ field, msg string }{
		{`"timeout":"soon"`, "duration"},
		{`"timeout":"-1s"`, "duration"},
		{`"timeout":true`, "duration"},
		{`"timeout":"999h"`, "timeout"},
		{`"cpus":-1`, "cpus"},
		{`"cpus":"2"`, "number"},
		{`"memory":"1m"`, "at least 6m"},
		{`"memory":"lots"`, "size"},
		{`"memory":1.5`, "integer"},
		{`"pids":-3`, "integer"},
		{`"network":"bad net"`, "network"},
		{`"read_only":"yes"`, "true or false"},
		{`"user":"root; rm -rf /"`, "user"},
		{`"retry":[]`, "object"},
		{`"retry":{"retries":1000}`, "retries"},
		{`"retry":{"factor":0.5}`, "factor"},
		{`"retry":{"on_exit_codes":[0]}`, "exit code"},
		{`"retry":{"on_error_kinds":["image"]}`, "cannot be retried"},
		{`"retry":{"sometimes":true}`, "unknown retry field"},
	} {
		_, err := ParseStep([]byte(`{"name":"a","image":"b","commands":["x"],` + c.field + `}`))
		if !errors.Is(err, ErrInvalidStep) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want one mentioning %q", c.field, err, c.msg)
		}
	}
}

func TestRetryPolicy(t *testing.T) {
	step, err := ParseStep([]byte(`{"name":"s","image":"i","commands":["x"],"retry":{"retries":5}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := *step.Retry
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: time.Minute} {
		if got := r.Delay(n); got != want {
			t.Errorf("default Delay(%d) = %s, want %s", n, got, want)
		}
	}
	// initial 0s retries at once; no initial is the default 1s.
	step, err = ParseStep([]byte(`{"name":"s","image":"i","commands":["x"],"retry":{"retries":5,"initial":"0s"}}`))
	if err != nil || step.Retry.Delay(1) != 0 || step.Retry.Delay(4) != 0 {
		t.Errorf("initial 0s: %v %+v", err, step.Retry)
	}
	// A policy sees the step as JSON and may hand it back: the zero survives.
	b, _ := json.Marshal(step)
	if again, err := ParseStep(b); err != nil || again.Retry.Delay(1) != 0 {
		t.Errorf("initial 0s after a round trip through JSON (%s): %v %+v", b, err, again.Retry)
	}
	if _, err := ParseStep([]byte(`{"name":"s","image":"i","commands":["x"],"retry":{"retries":5,"max":"0s"}}`)); err == nil || !strings.Contains(err.Error(), "initial 0s") {
		t.Errorf("max 0s: %v", err)
	}
	custom := Retry{Initial: Duration(100 * time.Millisecond), Factor: 10, Max: Duration(5 * time.Second)}
	if custom.Delay(2) != time.Second || custom.Delay(3) != 5*time.Second {
		t.Errorf("custom delays %s %s", custom.Delay(2), custom.Delay(3))
	}
	cases := []struct {
		r     Retry
		code  int
		kind  string
		retry bool
	}{
		{Retry{}, 1, "", true},
		{Retry{}, 0, "", false},
		{Retry{}, 124, ErrorKindTimeout, true},
		{Retry{}, 1, ErrorKindImage, false},
		{Retry{}, 1, ErrorKindCancelled, false},
		{Retry{OnExitCodes: []int{75}}, 75, "", true},
		{Retry{OnExitCodes: []int{75}}, 1, "", false},
		{Retry{OnExitCodes: []int{75}}, 137, ErrorKindOOM, false},
		{Retry{OnErrorKinds: []string{ErrorKindOOM}}, 137, ErrorKindOOM, true},
		{Retry{OnErrorKinds: []string{ErrorKindOOM}}, 1, "", false},
	}
	for _, c := range cases {
		if got := c.r.Matches(c.code, c.kind); got != c.retry {
			t.Errorf("%+v matches(%d, %q) = %v", c.r, c.code, c.kind, got)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "6m": 6 << 20, "1GiB": 1 << 30, "1.5g": 3 << 29, "512MB": 512 << 20, "64k": 64 << 10} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "-1m", "NaN", "1t", "1e30g"} {
		if _, err := ParseMemory(in); err == nil {
			t.Errorf("ParseMemory(%q) accepted", in)
		}
	}
}
