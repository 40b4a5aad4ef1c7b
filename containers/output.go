package containers

import (
	"io"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/rundir"
	"github.com/wflow/wflow/step"
)

// tail keeps the last max bytes written to it, in at most 2*max of memory.
type tail struct {
	max       int
	buf       []byte
	truncated bool
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
		t.truncated = true
		t.buf = t.buf[:0]
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
		t.truncated = true
	}
	return n, nil
}

// text returns the kept bytes, at most max, starting on a UTF-8 boundary.
func (t *tail) text() (string, bool) {
	b := t.buf
	truncated := t.truncated
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		truncated = true
	}
	if truncated {
		for n := 0; n < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[0]); n++ {
			b = b[1:]
		}
	}
	return string(b), truncated
}

// Output is where one output stream of a step goes: a file in the run
// directory with all of it, the tail kept for the step.ExecResult, and an optional
// live writer (the console). Writes are serialised: a step's commands write
// one after another, but an engine may write from its own goroutine.
type Output struct {
	mu   sync.Mutex
	file *os.File
	tail tail
	live io.Writer
	err  error // first error writing the file
}

// NewOutput creates the file rel in the run directory ("" for none) and
// returns an Output that keeps the last abi.MaxStreamText bytes for the
// step.ExecResult and copies to live (may be nil).
func NewOutput(runDir, rel string, live io.Writer) (*Output, error) {
	o := &Output{tail: tail{max: abi.MaxStreamText}, live: live}
	if rel != "" {
		f, err := rundir.CreateFile(runDir, rel, os.O_TRUNC)
		if err != nil {
			return nil, err
		}
		o.file = f
	}
	return o, nil
}

// Text returns the kept tail and whether it was cut.
func (s *Output) Text() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tail.text()
}

// Write never fails, so that one broken sink never stops the container's
// output from being drained; the first file error is kept for the step.ExecResult.
func (s *Output) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			s.err = err
		}
	}
	s.tail.Write(p)
	if s.live != nil {
		s.live.Write(p) // best effort: the console is not the record
	}
	return len(p), nil
}

// Close closes the file and returns the first error writing it.
func (s *Output) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		if err := s.file.Close(); s.err == nil {
			s.err = err
		}
	}
	return s.err
}

// AsTheModuleGotIt returns a result the run report (or a journal) kept,
// step.ExecResult.ForReport, with stdout and stderr as the module got them:
// a text the report cut is read again from the step's stream files in the
// run directory root (the last abi.MaxStreamText bytes, as the runner kept
// them). A file that cannot be read leaves the report's text.
func AsTheModuleGotIt(root *os.Root, r step.ExecResult) step.ExecResult {
	if r.StdoutTruncated {
		if text, cut, err := streamTail(root, r.StdoutFile); err == nil {
			r.Stdout, r.StdoutTruncated = text, cut
		}
	}
	if r.StderrTruncated {
		if text, cut, err := streamTail(root, r.StderrFile); err == nil {
			r.Stderr, r.StderrTruncated = text, cut
		}
	}
	return r
}

// streamTail reads the last abi.MaxStreamText bytes of a stream file of the
// run directory, as the ExecResult of the step that wrote it held them, and
// whether the file holds more.
func streamTail(root *os.Root, rel string) (string, bool, error) {
	if rel == "" {
		return "", false, os.ErrNotExist
	}
	f, err := rundir.OpenRegular(root, rel)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", false, err
	}
	t := tail{max: abi.MaxStreamText}
	if size := info.Size(); size > abi.MaxStreamText {
		if _, err := f.Seek(size-abi.MaxStreamText, io.SeekStart); err != nil {
			return "", false, err
		}
		t.truncated = true
	}
	if _, err := io.Copy(&t, io.LimitReader(f, abi.MaxStreamText)); err != nil {
		return "", false, err
	}
	text, cut := t.text()
	return text, cut, nil
}
