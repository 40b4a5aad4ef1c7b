package journal

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
	"github.com/wflow/wflow/rundir"
)

// The calls journal records everything that crossed the module's imports
// in one run: every wflow_v1 call in order, with its request as the host
// read it, its errno and its answer, and every clock reading and random
// byte WASI handed the module. `wflow replay` runs a module against it
// with no engine (docs/durability.md, Replay).
const (
	CallsFormat  = "wflow-calls"
	CallsVersion = 1
)

// CallsPath is where run runID's calls journal lies, relative to the run
// directory.
func CallsPath(runID string) string {
	return filepath.Join(RunsDir, runID, "calls.jsonl")
}

// IncompleteCallsPath is where a calls journal that could not be written
// whole (a full disk) is moved at the end of its run, so that nothing takes
// it for the journal of a run that crashed.
func IncompleteCallsPath(runID string) string {
	return CallsPath(runID) + ".incomplete"
}

// ErrIncompleteCalls is returned for a run whose calls journal could not be
// written whole.
var ErrIncompleteCalls = errors.New("the run could not write its calls journal whole (" + "calls.jsonl.incomplete" + ")")

// CallsHeader is the first line of a calls journal.
type CallsHeader struct {
	Format       string   `json:"format"`  // CallsFormat
	Version      int      `json:"version"` // CallsVersion
	RunID        string   `json:"run_id"`
	ABI          string   `json:"abi"`
	ModuleSHA256 string   `json:"module_sha256"`
	Args         []string `json:"args"`   // the module's argv
	Params       Bytes    `json:"params"` // what params_get answered, byte for byte
	// MemoryLimitMiB is the module's memory limit in the run (--max-memory),
	// which a replay uses unless told otherwise.
	MemoryLimitMiB uint32 `json:"memory_limit_mib,omitempty"`
}

// CallsRecord is one line after the header: a call, a clock reading, random
// bytes, or the end of the module. Exactly one field is set.
type CallsRecord struct {
	Call   *Call   `json:"call,omitempty"`
	Clock  *Clock  `json:"clock,omitempty"`
	Random *Bytes  `json:"random,omitempty"`
	End    *Ending `json:"end,omitempty"`
	// Overflow says the module read more clock values or random bytes
	// than a journal keeps (MaxClockReadings, MaxRandomBytes): the rest
	// were not recorded, and the run cannot be replayed exactly.
	Overflow string `json:"overflow,omitempty"`
}

// What a calls journal keeps of the clocks and random bytes a module reads
// (a module that reads the clock in a loop would otherwise grow it without
// end).
const (
	MaxClockReadings = 1_000_000
	MaxRandomBytes   = 16 << 20
)

// Call is one call of the module to a wflow_v1 function.
type Call struct {
	N     int64   `json:"n"` // 1 for the module's first call
	Fn    string  `json:"fn"`
	Req   Request `json:"req"`
	Errno uint32  `json:"errno"`
	Error string  `json:"error,omitempty"` // the failure's message, as error_get gave it
	Fatal bool    `json:"fatal,omitempty"` // the call ended the module (over its budget)
	Ans   *Answer `json:"ans,omitempty"`
	Step  string  `json:"step,omitempty"` // the step a submit named, for people reading the journal
}

// Request is what the host read from the module for a call; a field the
// call does not take, or could not read (errno fault), is absent.
type Request struct {
	Spec    *Bytes   `json:"spec,omitempty"`       // the submit functions
	Handles []uint32 `json:"handles,omitempty"`    // step_wait, step_wait_timeout
	Timeout *uint32  `json:"timeout_ms,omitempty"` // step_wait_timeout
	Handle  *uint32  `json:"handle,omitempty"`     // step_result, step_cancel
	Level   *uint32  `json:"level,omitempty"`      // log_write
	Msg     *Bytes   `json:"msg,omitempty"`        // log_write
	JSON    *Bytes   `json:"json,omitempty"`       // output_set
}

// Answer is what a call gave the module besides its errno.
type Answer struct {
	Handle *uint32 `json:"handle,omitempty"` // the submit functions and service_exec: the handle issued; service_start: the service
	Ready  *uint32 `json:"ready,omitempty"`  // step_wait, step_wait_timeout
	// Buffer answers (params_get, step_result, error_get): the answer's
	// length and SHA-256, and its bytes: inline (Data), or by reference to
	// where the run directory keeps them (Ref: RefParams, the header's
	// params; RefResult, the step's line in the results journal and its
	// stream files).
	Len    *uint32 `json:"len,omitempty"`
	SHA256 string  `json:"sha256,omitempty"`
	Data   *Bytes  `json:"data,omitempty"`
	Ref    string  `json:"ref,omitempty"`
}

// References of Answer.Ref.
const (
	RefParams = "params"
	RefResult = "result"
)

// Clock is one clock reading WASI handed the module.
type Clock struct {
	Wall *int64 `json:"wall,omitempty"` // wall clock, ns since the Unix epoch
	Mono *int64 `json:"mono,omitempty"` // monotonic clock, ns
}

// Ending is how the module ended.
type Ending struct {
	Status   string `json:"status"`
	ExitCode uint32 `json:"exit_code"`
}

// Bytes are bytes that marshal as a JSON string when they are valid UTF-8
// (exact: a string round-trips), else as {"base64": "..."}.
type Bytes []byte

// MarshalJSON implements json.Marshaler.
func (b Bytes) MarshalJSON() ([]byte, error) {
	if utf8.Valid(b) {
		return json.Marshal(string(b))
	}
	return json.Marshal(struct {
		Base64 string `json:"base64"`
	}{base64.StdEncoding.EncodeToString(b)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*b = Bytes(s)
		return nil
	}
	var enc struct {
		Base64 *string `json:"base64"`
	}
	if err := json.Unmarshal(data, &enc); err != nil || enc.Base64 == nil {
		return errors.New("want a string or {\"base64\": ...}")
	}
	raw, err := base64.StdEncoding.DecodeString(*enc.Base64)
	*b = raw
	return err
}

// Ptr returns a pointer to a copy of b, for the optional fields.
func (b Bytes) Ptr() *Bytes {
	c := append(Bytes(nil), b...)
	return &c
}

// Digest is the hex SHA-256 Answer.SHA256 holds.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Calls appends a run's calls journal. Each record is one line written with
// one write call; the file is synced at each call that starts or waits for
// steps (what a crash must not lose before the steps it started) and at
// Close. Calls are made by the module's goroutine one at a time; the mutex
// is for Close.
type Calls struct {
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer // records since the last call: written with the next one
	n      int64
	err    error
	runDir string
	runID  string

	clocks   int   // clock readings recorded
	random   int64 // random bytes recorded
	overflow bool  // an Overflow record was written
}

// OpenCalls creates run runID's calls journal and writes its header.
func OpenCalls(runDir string, h CallsHeader) (*Calls, error) {
	f, err := rundir.CreateFile(runDir, CallsPath(h.RunID), os.O_APPEND|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("calls journal: %w", err)
	}
	h.Format, h.Version = CallsFormat, CallsVersion
	c := &Calls{f: f, w: bufio.NewWriterSize(f, 64<<10), runDir: runDir, runID: h.RunID}
	c.write(h, true, true)
	if c.err != nil {
		f.Close()
		return nil, fmt.Errorf("calls journal: %w", c.err)
	}
	return c, nil
}

// write appends one line; flush writes it (and what was buffered before
// it) to the file, sync makes it durable.
func (c *Calls) write(v any, flush, sync bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocked(v, flush, sync)
}

func (c *Calls) writeLocked(v any, flush, sync bool) {
	if c.err != nil || c.f == nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = c.w.Write(append(b, '\n'))
	}
	if err == nil && (flush || sync) {
		err = c.w.Flush()
	}
	if err == nil && sync {
		err = c.f.Sync()
	}
	c.err = err
}

// kept counts a clock reading or random bytes against the journal's caps;
// false (after one Overflow record) past them.
func (c *Calls) kept(clocks int, random int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clocks += clocks
	c.random += random
	if c.clocks <= MaxClockReadings && c.random <= MaxRandomBytes {
		return true
	}
	if !c.overflow {
		c.overflow = true
		c.writeLocked(CallsRecord{Overflow: "clocks or random bytes"}, true, false)
	}
	return false
}

// Call appends a call, numbering it.
func (c *Calls) Call(call Call) {
	c.n++
	call.N = c.n
	c.write(CallsRecord{Call: &call}, true, syncs(call.Fn))
}

// syncs reports whether a call to fn is synced: those that start steps or
// wait for them.
func syncs(fn string) bool {
	switch fn {
	case "step_submit", "step_run", "step_wait", "notebook_submit", "notebook_run", "notebook_build":
		return true
	}
	return false
}

// Wall appends a wall-clock reading.
func (c *Calls) Wall(ns int64) {
	if c.kept(1, 0) {
		c.write(CallsRecord{Clock: &Clock{Wall: &ns}}, false, false)
	}
}

// Mono appends a monotonic-clock reading.
func (c *Calls) Mono(ns int64) {
	if c.kept(1, 0) {
		c.write(CallsRecord{Clock: &Clock{Mono: &ns}}, false, false)
	}
}

// Random appends random bytes handed to the module.
func (c *Calls) Random(b []byte) {
	if c.kept(0, int64(len(b))) {
		c.write(CallsRecord{Random: Bytes(b).Ptr()}, false, false)
	}
}

// End appends how the module ended.
func (c *Calls) End(e Ending) { c.write(CallsRecord{End: &e}, true, true) }

// Overflowed reports whether the module read more clock values or random
// bytes than the journal keeps.
func (c *Calls) Overflowed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overflow
}

// Close closes the journal and returns the first error writing it; a
// journal that could not be written whole is moved to IncompleteCallsPath.
func (c *Calls) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return c.err
	}
	if c.err == nil {
		c.err = c.w.Flush()
	}
	err := c.f.Close()
	c.f = nil
	if c.err == nil {
		c.err = err
	}
	if c.err != nil {
		if root, err := os.OpenRoot(c.runDir); err == nil {
			root.Rename(CallsPath(c.runID), IncompleteCallsPath(c.runID))
			root.Close()
		}
	}
	return c.err
}

// Recorded is a calls journal read back.
type Recorded struct {
	Header CallsHeader
	Calls  []Call
	// Walls and Monos are the clock readings in order; WallsAt and MonosAt
	// how many calls the module had made before each.
	Walls, Monos     []int64
	WallsAt, MonosAt []int
	Random           []byte
	End              *Ending // nil when the run ended before the module did (a crash)
	// Torn is set when the last line was not a whole record (a crash while
	// writing it): it was dropped.
	Torn bool
	// Overflow is set when the module read more clock values or random
	// bytes than the journal keeps.
	Overflow bool
}

// Caps on what ReadCalls reads.
const (
	MaxCallsBytes = 1 << 30 // bytes of a calls journal
	MaxCallLine   = 64 << 20
)

// ReadCalls reads run runID's calls journal from a run directory: a
// regular file, through os.Root, line by line (a bad line stops it before
// the rest is read). A last line that is not a whole record is dropped
// (Torn); a bad line before it is an error.
func ReadCalls(runDir, runID string) (*Recorded, error) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return nil, fmt.Errorf("calls journal: %w", err)
	}
	defer root.Close()
	f, err := rundir.OpenRegular(root, CallsPath(runID))
	if err != nil {
		return nil, fmt.Errorf("calls journal: %w", err)
	}
	defer f.Close()
	return parseCalls(io.LimitReader(f, MaxCallsBytes+1))
}

// ParseCalls parses the bytes of a calls journal (see ReadCalls).
func ParseCalls(b []byte) (*Recorded, error) {
	return parseCalls(bytes.NewReader(b))
}

func parseCalls(in io.Reader) (*Recorded, error) {
	r := &Recorded{}
	lines := bufio.NewReaderSize(in, 64<<10)
	var line, pending []byte // pending: the last line read, parsed once the next one shows it was not the last
	read := int64(0)
	for n := 1; ; n++ {
		line = line[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = lines.ReadSlice('\n')
			read += int64(len(chunk))
			if len(line)+len(chunk) <= MaxCallLine+1 {
				line = append(line, chunk...)
			}
			if err != bufio.ErrBufferFull {
				break
			}
		}
		if read > MaxCallsBytes {
			return nil, fmt.Errorf("calls journal: over %d bytes", MaxCallsBytes)
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("calls journal: %w", err)
		}
		if pending != nil {
			if perr := r.add(pending, n-1, false); perr != nil {
				return nil, perr
			}
		}
		if err == io.EOF {
			if len(line) > 0 {
				if perr := r.add(line, n, true); perr != nil {
					return nil, perr
				}
			}
			break
		}
		pending = append(pending[:0], line...)
	}
	if r.Header.Format == "" {
		return nil, errors.New("calls journal: empty, or its header was cut off")
	}
	return r, nil
}

// add parses line n (from 1) into r; last says it is the journal's last
// line (ending with its newline or not), which may be torn.
func (r *Recorded) add(line []byte, n int, last bool) error {
	whole := bytes.HasSuffix(line, []byte("\n")) && len(line) <= MaxCallLine
	if n == 1 {
		if !whole && last {
			r.Torn = true
			return nil
		}
		if !whole || json.Unmarshal(line, &r.Header) != nil || r.Header.Format != CallsFormat {
			return errors.New("calls journal: the first line is no header of a " + CallsFormat + " journal")
		}
		if r.Header.Version != CallsVersion {
			return fmt.Errorf("calls journal: version %d; this wflow reads version %d", r.Header.Version, CallsVersion)
		}
		if b, err := hex.DecodeString(r.Header.ModuleSHA256); err != nil || len(b) != sha256.Size {
			return errors.New("calls journal: the header's module_sha256 is no SHA-256")
		}
		return nil
	}
	if r.Header.Format == "" {
		return errors.New("calls journal: no header")
	}
	var rec CallsRecord
	if !whole || json.Unmarshal(line, &rec) != nil || !rec.valid() {
		if last {
			r.Torn = true
			return nil
		}
		return fmt.Errorf("calls journal: line %d is not a record", n)
	}
	switch {
	case rec.Call != nil:
		if rec.Call.N != int64(len(r.Calls))+1 {
			return fmt.Errorf("calls journal: line %d is call %d, want %d", n, rec.Call.N, len(r.Calls)+1)
		}
		if _, ok := abi.Lookup(abi.Functions, rec.Call.Fn); !ok {
			return fmt.Errorf("calls journal: line %d calls %q, no function of %s", n, clip.String(rec.Call.Fn, 40), abi.ModuleName)
		}
		r.Calls = append(r.Calls, *rec.Call)
	case rec.Clock != nil && rec.Clock.Wall != nil:
		r.Walls, r.WallsAt = append(r.Walls, *rec.Clock.Wall), append(r.WallsAt, len(r.Calls))
	case rec.Clock != nil:
		r.Monos, r.MonosAt = append(r.Monos, *rec.Clock.Mono), append(r.MonosAt, len(r.Calls))
	case rec.Random != nil:
		r.Random = append(r.Random, *rec.Random...)
	case rec.End != nil:
		r.End = rec.End
	case rec.Overflow != "":
		r.Overflow = true
	}
	return nil
}

// valid reports whether exactly one part of the record is set.
func (r CallsRecord) valid() bool {
	n := 0
	for _, set := range []bool{r.Call != nil, r.Clock != nil, r.Random != nil, r.End != nil, r.Overflow != ""} {
		if set {
			n++
		}
	}
	return n == 1 && (r.Clock == nil || (r.Clock.Wall == nil) != (r.Clock.Mono == nil))
}
