package wflow

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// WaitAll blocks until every handle's step has finished and returns their
// results in the order of handles; each handle is then freed. A step that
// failed is not an error (check ExecResult.OK); an error means a handle
// could not be waited for, and the results of the others are still read.
func WaitAll(handles ...Handle) ([]ExecResult, error) {
	results := make([]ExecResult, len(handles))
	index := make(map[Handle]int, len(handles))
	pending := make([]Handle, 0, len(handles))
	for i, h := range handles {
		if _, dup := index[h]; dup {
			return nil, fmt.Errorf("wflow: WaitAll: handle %d given twice", h)
		}
		index[h] = i
		pending = append(pending, h)
	}
	var firstErr error
	for len(pending) > 0 {
		res, err := Wait(pending...)
		if err != nil {
			// Take out a handle the host refused, so the others are still waited for.
			if firstErr == nil {
				firstErr = err
			}
			pending = pending[1:]
			continue
		}
		results[index[res.Handle]] = res
		for i, h := range pending {
			if h == res.Handle {
				pending = append(pending[:i], pending[i+1:]...)
				break
			}
		}
	}
	return results, firstErr
}

// Group runs steps concurrently and waits for them together: Submit and
// SubmitNotebook start them at once, Wait returns every result in
// submission order.
//
//	var g wflow.Group
//	for _, f := range files {
//		g.Submit(wflow.Step{Name: "count-" + f, Image: "busybox", Commands: ...})
//	}
//	results, err := g.Wait()
type Group struct {
	handles []Handle
	err     error // the first submit error
}

// Submit starts a step (see the package Submit); an error is kept for Wait.
func (g *Group) Submit(s Step) {
	g.add(Submit(s))
}

// SubmitNotebook starts a notebook step; an error is kept for Wait.
func (g *Group) SubmitNotebook(n Notebook) {
	g.add(SubmitNotebook(n))
}

func (g *Group) add(h Handle, err error) {
	if err != nil {
		if g.err == nil {
			g.err = err
		}
		return
	}
	g.handles = append(g.handles, h)
}

// Wait waits for every step the group started and returns their results in
// the order submitted. Its error is the first submit or wait error; the
// steps that did start are waited for all the same. The group is empty
// afterwards, ready for reuse.
func (g *Group) Wait() ([]ExecResult, error) {
	results, err := WaitAll(g.handles...)
	if g.err != nil {
		err = g.err
	}
	g.handles, g.err = nil, nil
	return results, err
}

// ParamInt returns parameter name as an int: a JSON integer (--params) or a
// string holding one (-p n=3); def when the parameter is missing.
func ParamInt(name string, def int) (int, error) {
	return typedParam(name, def, intParam)
}

// ParamFloat returns parameter name as a float64: a JSON number or a string
// holding one; def when the parameter is missing.
func ParamFloat(name string, def float64) (float64, error) {
	return typedParam(name, def, floatParam)
}

// ParamBool returns parameter name as a bool: JSON true or false, or a
// string strconv.ParseBool reads ("true", "1", "false", ...); def when the
// parameter is missing.
func ParamBool(name string, def bool) (bool, error) {
	return typedParam(name, def, boolParam)
}

// ParamDuration returns parameter name as a time.Duration: a string
// time.ParseDuration reads ("90s", "1h30m"); def when the parameter is
// missing.
func ParamDuration(name string, def time.Duration) (time.Duration, error) {
	return typedParam(name, def, durationParam)
}

// typedParam reads parameter name and converts it with parse, which gets
// the raw JSON and, when it is a JSON string, its text.
func typedParam[T any](name string, def T, parse func(raw json.RawMessage, s string, isString bool) (T, error)) (T, error) {
	var all map[string]json.RawMessage
	if err := Params(&all); err != nil {
		return def, err
	}
	return paramFrom(all, name, def, parse)
}

func paramFrom[T any](all map[string]json.RawMessage, name string, def T, parse func(raw json.RawMessage, s string, isString bool) (T, error)) (T, error) {
	raw, ok := all[name]
	if !ok {
		return def, nil
	}
	var s string
	isString := json.Unmarshal(raw, &s) == nil
	v, err := parse(raw, s, isString)
	if err != nil {
		return def, fmt.Errorf("wflow: parameter %s = %s: %v", name, raw, err)
	}
	return v, nil
}

// The parsers of the typed parameters: raw is the JSON value, s its text
// when it is a JSON string.

func intParam(raw json.RawMessage, s string, isString bool) (int, error) {
	if isString {
		return strconv.Atoi(s)
	}
	var n int
	err := json.Unmarshal(raw, &n)
	return n, err
}

func floatParam(raw json.RawMessage, s string, isString bool) (float64, error) {
	if isString {
		return strconv.ParseFloat(s, 64)
	}
	var f float64
	err := json.Unmarshal(raw, &f)
	return f, err
}

func boolParam(raw json.RawMessage, s string, isString bool) (bool, error) {
	if isString {
		return strconv.ParseBool(s)
	}
	var b bool
	err := json.Unmarshal(raw, &b)
	return b, err
}

func durationParam(raw json.RawMessage, s string, isString bool) (time.Duration, error) {
	if !isString {
		return 0, fmt.Errorf("want a duration string like \"90s\"")
	}
	return time.ParseDuration(s)
}
