package step

import (
	"errors"
	"strings"
	"testing"

	"github.com/wflow/wflow/abi"
)

func TestParseStep(t *testing.T) {
	ok := `{"name":"a","image":"busybox","commands":[["echo","hi"],"echo $$HOME | wc -c"],"env":{"K":"V"}}`
	s, err := ParseStep([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "a" || s.Image != "busybox" || s.Env["K"] != "V" || len(s.Commands) != 2 {
		t.Fatalf("parsed %+v", s)
	}
	if got := s.Commands[0].Args(); strings.Join(got, " ") != "echo hi" {
		t.Errorf("argv command: %q", got)
	}
	if got := s.Commands[1].Args(); len(got) != 3 || got[0] != "sh" || got[1] != "-c" || got[2] != "echo $$HOME | wc -c" {
		t.Errorf("shell command: %q", got)
	}
}

func TestParseStepRejects(t *testing.T) {
	deep := strings.Repeat("[", abi.MaxJSONDepth+1) + strings.Repeat("]", abi.MaxJSONDepth+1)
	atDepth := `{"name":"a","image":"b","commands":["x"],"env":{}}`
	cases := []struct {
		name, spec string
		want       error
		msg        string
	}{
		{"empty", ``, ErrInvalidJSON, "syntax"},
		{"syntax", `{"name":`, ErrInvalidJSON, "syntax"},
		{"bad utf8", "{\"name\":\"\xff\"}", ErrInvalidJSON, "UTF-8"},
		{"too deep", `{"name":"a","x":` + deep + `}`, ErrInvalidJSON, "deeper"},
		{"not object", `["a"]`, ErrInvalidStep, "object"},
		{"unknown field", `{"name":"a","image":"b","commands":["x"],"privileged":true}`, ErrInvalidStep, `"privileged"`},
		{"duplicate field", `{"name":"a","name":"b","image":"b","commands":["x"]}`, ErrInvalidStep, "twice"},
		{"no name", `{"image":"b","commands":["x"]}`, ErrInvalidStep, "name"},
		{"bad name", `{"name":"../x","image":"b","commands":["x"]}`, ErrInvalidStep, "name"},
		{"long name", `{"name":"` + strings.Repeat("a", abi.MaxStepNameLen+1) + `","image":"b","commands":["x"]}`, ErrInvalidStep, "name"},
		{"name not string", `{"name":1,"image":"b","commands":["x"]}`, ErrInvalidStep, "string"},
		{"no image", `{"name":"a","commands":["x"]}`, ErrInvalidStep, "image"},
		{"image with space", `{"name":"a","image":"b c","commands":["x"]}`, ErrInvalidStep, "image"},
		{"no commands", `{"name":"a","image":"b"}`, ErrInvalidStep, "commands"},
		{"empty commands", `{"name":"a","image":"b","commands":[]}`, ErrInvalidStep, "commands"},
		{"commands not list", `{"name":"a","image":"b","commands":"x"}`, ErrInvalidStep, "list"},
		{"empty shell", `{"name":"a","image":"b","commands":[""]}`, ErrInvalidStep, "empty"},
		{"empty argv", `{"name":"a","image":"b","commands":[[]]}`, ErrInvalidStep, "empty"},
		{"number command", `{"name":"a","image":"b","commands":[1]}`, ErrInvalidStep, "string"},
		{"number arg", `{"name":"a","image":"b","commands":[["echo",1]]}`, ErrInvalidStep, "argument 2"},
		{"nul in arg", `{"name":"a","image":"b","commands":[["echo","a\u0000b"]]}`, ErrInvalidStep, "NUL"},
		{"env not object", `{"name":"a","image":"b","commands":["x"],"env":["K=V"]}`, ErrInvalidStep, "env"},
		{"env value number", `{"name":"a","image":"b","commands":["x"],"env":{"K":1}}`, ErrInvalidStep, "string"},
		{"env name with =", `{"name":"a","image":"b","commands":["x"],"env":{"A=B":"c"}}`, ErrInvalidStep, "env name"},
		{"too many commands", `{"name":"a","image":"b","commands":[` + strings.TrimSuffix(strings.Repeat(`"x",`, abi.MaxCommands+1), ",") + `]}`, ErrInvalidStep, "at most"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseStep([]byte(c.spec))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err %q does not mention %q", err, c.msg)
			}
		})
	}
	if _, err := ParseStep([]byte(atDepth)); err != nil {
		t.Errorf("valid step refused: %v", err)
	}
}

func TestCheckJSONDepthBoundary(t *testing.T) {
	for _, c := range []struct {
		depth int
		ok    bool
	}{{abi.MaxJSONDepth - 1, true}, {abi.MaxJSONDepth, true}, {abi.MaxJSONDepth + 1, false}} {
		doc := strings.Repeat("[", c.depth) + strings.Repeat("]", c.depth)
		if err := CheckJSON([]byte(doc), abi.MaxJSONDepth); (err == nil) != c.ok {
			t.Errorf("depth %d: err = %v, want ok=%v", c.depth, err, c.ok)
		}
	}
	// Brackets inside strings do not count.
	if err := CheckJSON([]byte(`["`+strings.Repeat("[", 1000)+`\"]"]`), 2); err != nil {
		t.Errorf("brackets in a string counted: %v", err)
	}
}
