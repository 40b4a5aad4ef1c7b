package step

import (
	"errors"
	"strings"
	"testing"
)

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"python": "python3", "dir": "/data", "x_1": "X"}
	cases := []struct {
		in, want, err string
	}{
		{in: "no dollars", want: "no dollars"},
		{in: "$python run.py", want: "python3 run.py"},
		{in: "${python}3", want: "python33"},
		{in: "$dir/$x_1", want: "/data/X"},
		{in: "cost: $$5", want: "cost: $5"},
		{in: "$$python", want: "$python"},
		{in: "$$$python", want: "$python3"},
		{in: "$home", err: "unknown variable $home"},
		{in: "${home}", err: "unknown variable ${home}"},
		{in: "end $", err: "stray $"},
		{in: "$1", err: "stray $"},
		{in: "${unclosed", err: "unclosed"},
		{in: "${not-a-name}", err: "not a variable name"},
		{in: "${}", err: "not a variable name"},
	}
	for _, c := range cases {
		got, err := expand(c.in, vars, func(n, w string) error { return unknownVar(Step{}, n, w) })
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expand(%q) = %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestExpandVarsStep(t *testing.T) {
	s := Step{Name: "a", Image: "b", Commands: []Command{{Argv: []string{"$python", "x"}}, {Shell: "echo $$HOME"}}}
	got, err := ExpandVars(s, map[string]string{"python": "python3"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Commands[0].Argv[0] != "python3" || got.Commands[1].Shell != "echo $HOME" {
		t.Errorf("expanded %+v", got.Commands)
	}
	if s.Commands[0].Argv[0] != "$python" {
		t.Error("ExpandVars changed its input")
	}
	_, err = ExpandVars(Step{Name: "a", Commands: []Command{{Shell: "echo $HOME"}}}, nil)
	if !errors.Is(err, ErrInvalidStep) || !strings.Contains(err.Error(), "command 1") {
		t.Errorf("err = %v", err)
	}
}
