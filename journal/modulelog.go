package journal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wflow/wflow/rundir"
)

// ModuleLogPath is where run runID's module log lies, relative to the run
// directory: every line the module printed or logged, as the console showed
// it, one per line: "<UTC time> <stream> <text>", the stream being stdout,
// stderr or the level of a log_write (debug, info, warn, error).
func ModuleLogPath(runID string) string {
	return filepath.Join(RunsDir, runID, "module.log")
}

// MaxModuleLog caps a module log: past it, one line says so and the rest is
// only on the console.
const MaxModuleLog = 64 << 20

// ModuleLog appends the module's lines to its log as they come.
type ModuleLog struct {
	mu   sync.Mutex
	f    *os.File
	size int64
	full bool // the cap was reached and said so
	err  error
}

// OpenModuleLog creates run runID's module log; it must not exist yet.
func OpenModuleLog(runDir, runID string) (*ModuleLog, error) {
	f, err := rundir.CreateFile(runDir, ModuleLogPath(runID), os.O_APPEND|os.O_EXCL)
	if err != nil {
		return nil, fmt.Errorf("module log: %w", err)
	}
	return &ModuleLog{f: f}, nil
}

// Line appends one line of the module's stream (stdout, stderr or a log
// level). A nil log writes nothing.
func (l *ModuleLog) Line(stream, text string) {
	if l == nil {
		return
	}
	line := time.Now().UTC().Format(TimeFormat) + " " + stream + " " + strings.ReplaceAll(text, "\n", " ") + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil || l.full {
		return
	}
	if l.size+int64(len(line)) > MaxModuleLog {
		line = time.Now().UTC().Format(TimeFormat) + " wflow [the module log stops here: over 64 MiB; the console had the rest]\n"
		l.full = true
	}
	n, err := l.f.WriteString(line)
	l.size += int64(n)
	l.err = err
}

// Close closes the log and returns the first error writing it.
func (l *ModuleLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); l.err == nil {
		l.err = err
	}
	return l.err
}

// TimeFormat is how wflow's logs write times: UTC, to the millisecond.
const TimeFormat = "2006-01-02T15:04:05.000Z"
