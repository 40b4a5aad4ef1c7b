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
	file          os.FileInfo // the journal read last, to tell when it was replaced
	offset        int64       // how much of it has been read
	pending       []byte      // the start of a line not ended yet (at most MaxLine)
	skipping      bool        // the line being read is over MaxLine: skip to its end
	read          int64       // bytes read, against MaxJournalBytes
	results       int         // results returned from this journal, against MaxRecords
}

// NewTail returns a Tail of run runID's journal in runDir, from its start.
func NewTail(runDir, runID string) *Tail {
	return &Tail{runDir: runDir, runID: runID}
}

// Next returns the results of the whole lines appended since the last
// call (none while the journal does not exist), in the journal's order. A
// line not yet ended is kept for a later call, and a line that is not a
// result is skipped. A journal that was replaced (another file, or a
// shorter one) is read again from its start: its results may come again,
// so a caller keeps them by handle.
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
	if t.file != nil && (!os.SameFile(t.file, info) || info.Size() < t.offset) {
		t.offset, t.pending, t.skipping, t.results = 0, nil, false, 0
	}
	t.file = info
	lines := bufio.NewReaderSize(io.NewSectionReader(f, t.offset, info.Size()-t.offset), 64<<10)
	var out []step.ExecResult
	for {
		chunk, err := lines.ReadSlice('\n')
		t.offset += int64(len(chunk))
		if t.read += int64(len(chunk)); t.read > MaxJournalBytes {
			return out, fmt.Errorf("%s: over %d bytes read", rel, MaxJournalBytes)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("%s: %w", rel, err)
		}
		ended := err == nil
		switch {
		case t.skipping:
			t.skipping = !ended
		case len(t.pending)+len(chunk) > MaxLine:
			t.pending, t.skipping = nil, !ended
		default:
			t.pending = append(t.pending, chunk...)
			if !ended {
				break
			}
			if res, ok := parseResult(t.pending); ok {
				if t.results++; t.results > MaxRecords {
					return out, fmt.Errorf("%s holds over %d results", rel, MaxRecords)
				}
				out = append(out, res.ExecResult)
			}
			t.pending = t.pending[:0]
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}
