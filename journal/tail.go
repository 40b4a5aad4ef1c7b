package journal

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// Tail reads a run's results journal as it grows, for a reader that
// follows a live run (wflow logs -f): each Next reads only what was
// appended since the last, so a poll costs the new lines, not the whole
// journal. It keeps Results' caps over everything it reads.
type Tail struct {
	runDir, runID string
	offset        int64 // where the next whole line starts
	skipping      bool  // the line at offset is over MaxLine: skip to its end
	read          int64 // bytes read, against MaxJournalBytes
	results       int   // results returned, against MaxRecords
}

// NewTail returns a Tail of run runID's journal in runDir, from its start.
func NewTail(runDir, runID string) *Tail {
	return &Tail{runDir: runDir, runID: runID}
}

// Next returns the results of the whole lines appended since the last
// call (none while the journal does not exist), in the journal's order. A
// line not yet ended is left for a later call, and a line that is not a
// result is skipped. A journal that got shorter (replaced) is read again
// from its start: its results may come again, so a caller keeps them by
// handle.
func (t *Tail) Next() ([]step.ExecResult, error) {
	root, err := os.OpenRoot(t.runDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	rel := Path(t.runID)
	if !isRegular(root, rel) {
		return nil, nil
	}
	f, err := rundir.OpenRegular(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() < t.offset {
		t.offset, t.skipping = 0, false
	}
	lines := bufio.NewReaderSize(io.NewSectionReader(f, t.offset, info.Size()-t.offset), 64<<10)
	var out []step.ExecResult
	var line []byte // the line being read, from offset
	for {
		chunk, err := lines.ReadSlice('\n')
		if t.read += int64(len(chunk)); t.read > MaxJournalBytes {
			return out, fmt.Errorf("%s: over %d bytes read", rel, MaxJournalBytes)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("%s: %w", rel, err)
		}
		ended := err == nil
		if !t.skipping {
			line = append(line, chunk...)
			if len(line) > MaxLine { // skipped: what was read of it is passed
				t.skipping, chunk, line = true, line, line[:0]
			}
		}
		if t.skipping {
			t.offset += int64(len(chunk))
			t.skipping = !ended
		} else if ended {
			t.offset += int64(len(line))
			if res, ok := parseResult(line); ok {
				if t.results++; t.results > MaxRecords {
					return out, fmt.Errorf("%s holds over %d results", rel, MaxRecords)
				}
				out = append(out, res.ExecResult)
			}
			line = line[:0]
		}
		if errors.Is(err, io.EOF) { // a line not ended is read again next time
			t.read -= int64(len(line))
			return out, nil
		}
	}
}
