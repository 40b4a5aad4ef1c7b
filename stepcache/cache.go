package stepcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/wflow/wflow/step"
)

// Mode says what a run does with the step cache.
type Mode int

// Modes of a run (`wflow run --no-cache`, `--cache-strict`).
const (
	On     Mode = iota // answer steps from the cache, store those that succeed
	Off                // keys only: nothing read or stored
	Strict             // as On, and a step the cache cannot answer fails (error kind cache_miss) instead of running
)

// Cache is the step cache as one run uses it.
type Cache struct {
	Store *Store
	Mode  Mode
	RunID string
	// Warn receives what went wrong storing a step; the step's result
	// stands. Nil drops it.
	Warn func(format string, args ...any)
}

// Lookup is what the cache says of a step about to run.
type Lookup struct {
	Key   string           // "" when the key could not be made (Miss says why)
	Hit   *step.ExecResult // the stored result, its outputs already restored; nil on a miss
	Miss  string           // why there was no hit
	Parts Parts
}

// Lookup answers a step about to run from the store, when the step is
// cacheable and the run reads the cache: its key from parts (called only
// then: hashing inputs costs), its outputs restored into the run directory
// root and its streams written to stdoutFile and stderrFile (paths of
// root). Otherwise, and on a miss, Miss says why.
func (c *Cache) Lookup(st step.Step, parts func() (Parts, error), root *os.Root, stdoutFile, stderrFile string) Lookup {
	switch {
	case c.Mode == Off:
		return Lookup{Miss: "the run does not read the step cache (--no-cache)"}
	case st.Cache != nil && !*st.Cache:
		return Lookup{Miss: `the step opts out ("cache": false)`}
	case len(st.Outputs) == 0:
		return Lookup{Miss: `the step declares no outputs ("outputs"), so it is never stored`}
	}
	p, err := parts()
	if err != nil {
		return Lookup{Miss: fmt.Sprintf("no key: %v", err)}
	}
	l := Lookup{Key: p.Key(), Parts: p}
	e, err := c.Store.Get(l.Key)
	if errors.Is(err, fs.ErrNotExist) {
		l.Miss = c.explain(st.Name, p)
		return l
	}
	if err != nil {
		l.Miss = fmt.Sprintf("the entry could not be read: %v", err)
		return l
	}
	if err := c.Store.Restore(e, root, stdoutFile, stderrFile); err != nil {
		l.Miss = fmt.Sprintf("the entry of run %s could not be restored: %v", e.RunID, err)
		return l
	}
	res := e.Result
	res.Cached, res.CachedFrom, res.Key, res.CacheMiss = true, e.RunID, l.Key, ""
	l.Hit = &res
	return l
}

// explain says why a key has no entry: which parts differ from the last
// entry stored for the step's name, or that there is none.
func (c *Cache) explain(name string, parts Parts) string {
	last := c.Store.last(name)
	if last == nil {
		return fmt.Sprintf("no entry: step %s was never stored", name)
	}
	if d := Diff(last.Parts, parts); d != "" {
		return fmt.Sprintf("no entry; since run %s stored step %s (%s): %s", last.RunID, name, last.Created.Format(time.RFC3339), d)
	}
	return fmt.Sprintf("no entry: the entry run %s stored for step %s is gone (pruned)", last.RunID, name)
}

// Save stores a step that succeeded, when it is cacheable and the run
// stores: its result, the content of its outputs and of its stream files
// (paths of the run directory root). Its inputs are hashed again first: a
// step whose inputs changed while it ran (another step, or the module,
// wrote them) produced its outputs from other content than its key says,
// and is not stored.
func (c *Cache) Save(ctx context.Context, st step.Step, l Lookup, res step.ExecResult, parts func() (Parts, error), root *os.Root) {
	if c.Mode == Off || l.Key == "" || l.Hit != nil || !st.Cacheable() || !res.OK() {
		return
	}
	warn := func(format string, args ...any) {
		if c.Warn != nil {
			c.Warn("step %s was not stored in the step cache: "+format, append([]any{st.Name}, args...)...)
		}
	}
	if after, err := parts(); err != nil || after.Key() != l.Key {
		warn("its inputs changed while it ran (%v)", err)
		return
	}
	e := &Entry{Version: KeyVersion, Key: l.Key, Step: st.Name, RunID: c.RunID, Created: time.Now().UTC(), Parts: l.Parts, Result: res}
	// Attempts name files of the run that stored it; decisions are each
	// run's own (a hit passes the policies again).
	e.Result.Key, e.Result.CacheMiss, e.Result.Decisions, e.Result.Attempts = "", "", nil, nil
	if err := c.Store.Put(ctx, e, root, st.Outputs, res.StdoutFile, res.StderrFile); err != nil {
		warn("%v", err)
	}
}
