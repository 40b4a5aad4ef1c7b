package step

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseService(t *testing.T) {
	s, err := ParseService([]byte(`{"name":"db","image":"pg","command":["postgres","-F"],"env":{"A":"1"},"secrets":{"PW":"db-pw"},
		"memory":"256m","ready":{"command":"pg_isready","timeout":"30s","interval":"1s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "db" || s.Image != "pg" || strings.Join(s.Command.Args(), " ") != "postgres -F" || s.Env["A"] != "1" ||
		s.Secrets["PW"] != "db-pw" || s.Memory != 256<<20 || s.Network != "run" || s.Ready.Command == nil ||
		s.Ready.Timeout != Duration(30*time.Second) || s.Ready.Interval != Duration(time.Second) {
		t.Errorf("parsed %+v", s)
	}
	s, err = ParseService([]byte(`{"name":"job","image":"b","command":"sleep 9","network":"none"}`))
	if err != nil || s.Network != "none" || s.Ready.Timeout != DefaultReadyTimeout || s.Ready.Command != nil || s.Ready.Port != 0 {
		t.Errorf("defaults: %+v %v", s, err)
	}
	for _, c := range []struct{ spec, msg string }{
		{`{"name":"db","image":"pg"}`, `needs a "command"`},
		{`{"name":"Db","image":"pg","command":"x"}`, "host name"},
		{`{"name":"db_1","image":"pg","command":"x"}`, "host name"},
		{`{"name":"db","image":"pg","command":"x","timeout":"1m"}`, `unknown field "timeout"`},
		{`{"name":"db","image":"pg","command":"x","network":"bridge"}`, "run's network"},
		{`{"name":"db","image":"pg","command":"x","ready":{"port":0}}`, "not a TCP port"},
		{`{"name":"db","image":"pg","command":"x","ready":{"port":80,"command":"true"}}`, "not both"},
		{`{"name":"db","image":"pg","command":"x","ready":{"timeout":"2h"}}`, "at most"},
		{`{"name":"db","image":"pg","command":"x","ready":{"interval":"1ms"}}`, "10ms or more"},
		{`{"name":"db","image":"pg","command":"x","ready":{"path":"/"}}`, "unknown field ready.path"},
		{`{"name":"db","image":"pg","command":"x","env":{"A":1}}`, "must be a string"},
	} {
		if _, err := ParseService([]byte(c.spec)); err == nil || !errors.Is(err, ErrInvalidStep) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.spec, err, c.msg)
		}
	}
	if _, err := ParseService([]byte(`{"name":`)); !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestParseExec(t *testing.T) {
	st, err := ParseExec([]byte(`{"name":"t","commands":["make test"],"env":{"K":"V"},"timeout":"5s"}`))
	if err != nil || st.Name != "t" || st.Commands[0].Shell != "make test" || st.Env["K"] != "V" || st.Timeout != Duration(5*time.Second) {
		t.Errorf("parsed %+v %v", st, err)
	}
	for _, field := range []string{`"image":"x"`, `"secrets":{"A":"b"}`, `"memory":"1g"`, `"network":"run"`, `"user":"0"`, `"retry":{"retries":1}`} {
		spec := `{"name":"t","commands":["x"],` + field + `}`
		if _, err := ParseExec([]byte(spec)); err == nil || !strings.Contains(err.Error(), "an exec spec knows") {
			t.Errorf("%s: %v", spec, err)
		}
	}
}
