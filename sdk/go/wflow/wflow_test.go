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
