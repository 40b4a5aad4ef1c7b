package wflow

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// WaitAll blocks until every handle's step has finished and returns their
// results in the order of handles; each handle is then freed. A step that
// failed is not an error (check ExecResult.OK). A handle that cannot be
// waited for (not open, or given twice) leaves a zero ExecResult in its
// place, and WaitAll returns the first such error after it has waited for
// all the others.
func WaitAll(handles ...Handle) ([]ExecResult, error) {
	results := make([]ExecResult, len(handles))
	var firstErr error
	// One at a time: WaitAll returns when the last step has finished, so
	// the order of the waits costs nothing, and a bad handle fails alone.
	for i, h := range handles {
		res, err := Wait(h)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		results[i] = res
	}
	return results, firstErr
}

// Group runs steps concurrently and waits for them together: Submit and
// SubmitNotebook start them at once, Wait returns one result per submit, in
// submission order (a submit the host refused gets a result with the step's
// name, ReturnCode 1 and the refusal in Error).
//
//	var g wflow.Group
//	for _, f := range files {
//		g.Submit(wflow.Step{Name: "count-" + f, Image: "busybox", Commands: ...})
//	}
//	results, err := g.Wait()
//
// The zero Group waits for every step whatever happens; a group made by
// NewGroup stops at the first failure, as golang.org/x/sync/errgroup does.
type Group struct {
	submits []submitted
	err     error // the first submit error

	// Set by NewGroup: Wait cancels the rest at the first failure, and
	// everything when ctx ends. A function value, not a flag: a module
	// that never calls NewGroup then never links Cancel and WaitAny, and
	// imports no ABI v1.2 function.
	waitFailFast func(*Group) ([]ExecResult, error)
	ctx          context.Context
}

// NewGroup returns a group that stops early, like errgroup.WithContext:
// when one of its steps fails (ExecResult.OK is false, or the host refused
// its submit) or ctx ends (its deadline passes), Wait cancels every step of
// the group still queued or running (Cancel) and returns once they have
// ended. Wait's error is then a *StepError with the first failed step's
// result, the error of a submit the host refused, or ctx's error. Needs
// ABI v1.2.
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
//	defer cancel()
//	g := wflow.NewGroup(ctx)
//	g.Submit(lint)
//	g.Submit(test)
//	results, err := g.Wait() // a failed lint cancels test
func NewGroup(ctx context.Context) *Group {
	return &Group{waitFailFast: (*Group).failFast, ctx: ctx}
}

// submitted is one submit of a group: its handle, or the error that
// refused it.
type submitted struct {
	name   string
	handle Handle
	err    error
}

// Submit starts a step (see the package Submit); an error is kept for Wait.
func (g *Group) Submit(s Step) {
	h, err := Submit(s)
	g.add(s.Name, h, err)
}

// SubmitNotebook starts a notebook step; an error is kept for Wait.
func (g *Group) SubmitNotebook(n Notebook) {
	h, err := SubmitNotebook(n)
	g.add(n.Name, h, err)
}

func (g *Group) add(name string, h Handle, err error) {
	if err != nil && g.err == nil {
		g.err = err
	}
	g.submits = append(g.submits, submitted{name: name, handle: h, err: err})
}

// Wait waits for every step the group started and returns one result per
// submit, in the order submitted (a group made by NewGroup cancels the
// rest at the first failure, and waits for them to end). Its error is the first submit or wait
// error; the steps that did start are waited for all the same. The group
// is empty afterwards, ready for reuse.
func (g *Group) Wait() ([]ExecResult, error) {
	if g.waitFailFast != nil {
		return g.waitFailFast(g)
	}
	var handles []Handle
	for _, s := range g.submits {
		if s.err == nil {
			handles = append(handles, s.handle)
		}
	}
	waited, err := WaitAll(handles...)
	if g.err != nil {
		err = g.err
	}
	results := make([]ExecResult, len(g.submits))
	for i, s := range g.submits {
		if s.err != nil {
			results[i] = ExecResult{Step: s.name, ReturnCode: 1, Error: s.err.Error()}
			continue
		}
		results[i], waited = waited[0], waited[1:]
	}
	g.submits, g.err = nil, nil
	return results, err
}

// failFast is Wait for a group made by NewGroup.
func (g *Group) failFast() ([]ExecResult, error) {
	results := make([]ExecResult, len(g.submits))
	index := map[Handle]int{} // open handles, to their submit
	var open []Handle         // in submission order
	for i, s := range g.submits {
		if s.err != nil {
			results[i] = ExecResult{Step: s.name, ReturnCode: 1, Error: s.err.Error()}
			continue
		}
		index[s.handle] = i
		open = append(open, s.handle)
	}
	err := g.err
	stopping := false
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		for _, h := range open {
			Cancel(h) // a step that has just finished keeps its result
		}
	}
	if err != nil {
		stop()
	}
	for len(open) > 0 {
		var res ExecResult
		var werr error
		if stopping {
			res, werr = Wait(open...) // cancelled: they end promptly
		} else {
			res, werr = WaitAny(g.ctx, open...)
		}
		if werr != nil {
			if !stopping && (g.ctx.Err() != nil || werr == context.DeadlineExceeded) {
				if err == nil {
					err = werr
				}
				stop()
				continue
			}
			// The host failed the wait (the run is ending): the steps
			// still open are the host's to cancel.
			if err == nil {
				err = werr
			}
			break
		}
		i := index[res.Handle]
		results[i] = res
		for j, h := range open {
			if h == res.Handle {
				open = append(open[:j], open[j+1:]...)
				break
			}
		}
		if !res.OK() && !stopping {
			if err == nil {
				err = &StepError{Result: res}
			}
			stop()
		}
	}
	g.submits, g.err = nil, nil
	return results, err
}

// ParamInt returns parameter name as an int: a whole JSON number (3, 3.0,
// 1e3 from --params) or a string holding an integer (-p n=3). Every Param
// accessor returns def when the parameter is missing or null, and def with
// an error naming the parameter when it does not convert.
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
	if !ok || string(raw) == "null" {
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
	if json.Unmarshal(raw, &n) == nil {
		return n, nil // an integer literal, exactly
	}
	var f float64 // 3.0 or 1e3
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("not a whole number an int holds")
	}
	return int(f), nil
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
