package step

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wflow/wflow/internal/clip"
)

// Duration is a time.Duration written in JSON as a Go duration string
// ("90s", "5m"); a JSON number is read as seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads what MarshalJSON writes (a journal's or a report's
// result read back).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Limits are what a step may use. Zero values mean "the run's default" (the
// CLI flags), whose zero values mean "no limit" except where documented.
type Limits struct {
	Timeout  Duration `json:"timeout,omitempty"`   // wall clock of all the step's commands
	CPUs     float64  `json:"cpus,omitempty"`      // CPU cores, e.g. 0.5
	Memory   int64    `json:"memory,omitempty"`    // bytes of memory (swap disabled)
	Pids     int64    `json:"pids,omitempty"`      // processes at once
	Network  string   `json:"network,omitempty"`   // Docker network mode: "none" or the run's --network
	ReadOnly bool     `json:"read_only,omitempty"` // read-only root filesystem (the run directory and /tmp stay writable)
	User     string   `json:"user,omitempty"`      // uid[:gid] or name[:group] in the image
}

// Caps on limit values, to refuse typos rather than pass them to the engine.
const (
	maxStepTimeout = 7 * 24 * time.Hour
	minMemory      = 6 << 20 // Docker's own minimum
	maxPids        = 1 << 22
	maxCPUs        = 1024
	maxRetries     = 100
)

var (
	networkPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	userPattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?$`)
)

// Merge returns l with every zero field taken from defaults.
func (l Limits) Merge(defaults Limits) Limits {
	if l.Timeout == 0 {
		l.Timeout = defaults.Timeout
	}
	if l.CPUs == 0 {
		l.CPUs = defaults.CPUs
	}
	if l.Memory == 0 {
		l.Memory = defaults.Memory
	}
	if l.Pids == 0 {
		l.Pids = defaults.Pids
	}
	if l.Network == "" {
		l.Network = defaults.Network
	}
	if l.User == "" {
		l.User = defaults.User
	}
	l.ReadOnly = l.ReadOnly || defaults.ReadOnly
	return l
}

// Validate checks the limits' ranges.
func (l Limits) Validate() error {
	switch {
	case l.Timeout < 0 || time.Duration(l.Timeout) > maxStepTimeout:
		return fmt.Errorf("timeout %s: use a duration between 0 and %s", time.Duration(l.Timeout), maxStepTimeout)
	case l.CPUs < 0 || l.CPUs > maxCPUs || math.IsNaN(l.CPUs):
		return fmt.Errorf("cpus %g: use a number of cores between 0 and %d", l.CPUs, maxCPUs)
	case l.Memory != 0 && l.Memory < minMemory:
		return fmt.Errorf("memory %d bytes: at least 6m", l.Memory)
	case l.Pids < 0 || l.Pids > maxPids:
		return fmt.Errorf("pids %d: use 1 to %d", l.Pids, maxPids)
	case l.Network != "" && !networkPattern.MatchString(l.Network):
		return fmt.Errorf("network %q is not a network mode", clip.String(l.Network, 64))
	case l.User != "" && !userPattern.MatchString(l.User):
		return fmt.Errorf("user %q: use uid[:gid] or name[:group]", clip.String(l.User, 64))
	}
	return nil
}

// numericUser is a user given as numbers, uid:gid.
var numericUser = regexp.MustCompile(`^([0-9]{1,10}):([0-9]{1,10})$`)

// CheckUser reports whether a step may run as user (its own user merged
// with the run's default, runDefault, which the invoking user chose with
// `--user`). Anything else the module asks for must be a numeric uid:gid
// with neither 0, unless allowRoot (`--allow-root`): a name is looked up in
// the image the module picked, where any name may stand for root, and a
// bare uid gets group 0 when the image does not know it.
func CheckUser(user, runDefault string, allowRoot bool) error {
	if allowRoot || user == runDefault {
		return nil
	}
	m := numericUser.FindStringSubmatch(user)
	if m == nil {
		return fmt.Errorf("user %q: a step may only ask for a numeric uid:gid other than the run's default (%s); run with --allow-root to allow names and root", clip.String(user, 64), runDefault)
	}
	uid, _ := strconv.ParseUint(m[1], 10, 32)
	gid, _ := strconv.ParseUint(m[2], 10, 32)
	if uid == 0 || gid == 0 {
		return fmt.Errorf("user %q: root (uid or gid 0) is refused unless the run allows it with --allow-root", user)
	}
	return nil
}

// ParseMemory parses a memory size: bytes, or a number with a binary suffix
// b, k, m, g (case-insensitive, an optional trailing "b" or "ib": "512m",
// "1GiB", "1.5g").
func ParseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || v*float64(mult) > float64(1<<50) {
		return 0, fmt.Errorf("memory %q: use bytes or a size like 512m or 2g", clip.String(s, 64))
	}
	return int64(v * float64(mult)), nil
}

// ParseDuration parses a Go duration string ("90s", "1h30m").
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("duration %q: use a duration like 30s or 5m", clip.String(s, 64))
	}
	return Duration(d), nil
}

// Retry says whether and how a failed step is run again.
type Retry struct {
	Retries      int      `json:"retries"`                  // runs after the first; 0 means none
	Initial      Duration `json:"initial"`                  // delay before the first retry; 0 retries at once (the parser's default: 1s)
	Factor       float64  `json:"factor,omitempty"`         // delay multiplier per retry; 0 means 2 (the parser's default)
	Max          Duration `json:"max,omitempty"`            // longest delay; 0 means 1h (the parser's default: 1m)
	OnExitCodes  []int    `json:"on_exit_codes,omitempty"`  // exit codes that retry
	OnErrorKinds []string `json:"on_error_kinds,omitempty"` // error kinds that retry
}

// retryableKinds are the error kinds a retry may name; the others (image,
// cancelled, io) would fail the same way again or must not be retried.
var retryableKinds = map[string]bool{ErrorKindEngine: true, ErrorKindTimeout: true, ErrorKindOOM: true}

// Validate checks the retry policy.
func (r Retry) Validate() error {
	switch {
	case r.Retries < 0 || r.Retries > maxRetries:
		return fmt.Errorf("retry.retries %d: use 0 to %d", r.Retries, maxRetries)
	case r.Initial < 0 || r.Max < 0 || time.Duration(r.Initial) > time.Hour || time.Duration(r.Max) > time.Hour:
		return fmt.Errorf("retry delays must lie between 0 and 1h")
	case r.Factor != 0 && (r.Factor < 1 || r.Factor > 10 || math.IsNaN(r.Factor)):
		return fmt.Errorf("retry.factor %g: use 1 to 10", r.Factor)
	}
	for _, c := range r.OnExitCodes {
		if c < 1 || c > 255 {
			return fmt.Errorf("retry.on_exit_codes: %d is not a non-zero exit code", c)
		}
	}
	for _, k := range r.OnErrorKinds {
		if !retryableKinds[k] {
			return fmt.Errorf("retry.on_error_kinds: %q cannot be retried (use engine, timeout or oom)", clip.String(k, 32))
		}
	}
	return nil
}

// Delay returns the wait before retry n (1 for the first retry).
func (r Retry) Delay(n int) time.Duration {
	d, f, max := time.Duration(r.Initial), r.Factor, time.Duration(r.Max)
	if f == 0 {
		f = 2
	}
	if max == 0 {
		max = time.Hour
	}
	delay := float64(d) * math.Pow(f, float64(n-1))
	if delay > float64(max) {
		return max
	}
	return time.Duration(delay)
}

// Matches reports whether an attempt that ended with this return code and
// error kind is retried. Without on_exit_codes and on_error_kinds, every
// non-zero exit and every retryable error kind is; with either, only what
// they list.
func (r Retry) Matches(code int, kind string) bool {
	if kind != "" {
		if len(r.OnExitCodes) == 0 && len(r.OnErrorKinds) == 0 {
			return retryableKinds[kind]
		}
		for _, k := range r.OnErrorKinds {
			if k == kind {
				return true
			}
		}
		return false
	}
	if code == 0 {
		return false
	}
	if len(r.OnExitCodes) == 0 && len(r.OnErrorKinds) == 0 {
		return true
	}
	for _, c := range r.OnExitCodes {
		if c == code {
			return true
		}
	}
	return false
}
