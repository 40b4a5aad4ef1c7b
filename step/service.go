package step

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/wflow/wflow/abi"
	"github.com/wflow/wflow/internal/clip"
)

// Service is a long-lived container of a run (docs/services.md): a database
// a step needs, or a job container whose commands run with exec. It is on
// the run's network, reachable there by its Name.
type Service struct {
	Name    string
	Image   string
	Command Command // replaces the image's CMD (its ENTRYPOINT stays)
	Env     map[string]string
	Secrets map[string]string
	Limits  // cpus, memory, pids, read_only, user; Network "run" or "none"; no timeout
	Ready   Ready
}

// Ready is how wflow learns that a service is ready: a command run in it
// exits 0, or a TCP port of it accepts a connection. Neither: ready once
// started.
type Ready struct {
	Command  *Command
	Port     int
	Timeout  Duration // default DefaultReadyTimeout
	Interval Duration // default DefaultReadyInterval
}

// Defaults and caps of a readiness check.
const (
	DefaultReadyTimeout  = Duration(60 * time.Second)
	DefaultReadyInterval = Duration(250 * time.Millisecond)
	MaxReadyTimeout      = Duration(30 * time.Minute)
)

// serviceNamePattern is a DNS label: a service's name is its host name.
var serviceNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ServiceFields and ExecFields are the fields of a service spec and of an
// exec spec (docs/abi.md).
var (
	ServiceFields = []string{"name", "image", "command", "env", "secrets", "cpus", "memory", "pids", "network", "read_only", "user", "ready"}
	ExecFields    = []string{"name", "commands", "env", "timeout"}
)

// ParseService decodes and validates a service spec. Errors wrap
// ErrInvalidJSON or ErrInvalidStep.
func ParseService(spec []byte) (Service, error) {
	var s Service
	if err := CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return s, err
	}
	shared := map[string]string{} // read by the step parser, with its rules
	var ready gjson.Result
	err := Fields(gjson.ParseBytes(spec), "a service spec", func(k string, v gjson.Result) error {
		switch {
		case k == "command":
			shared["commands"] = "[" + v.Raw + "]"
		case k == "ready":
			ready = v
		case slices.Contains(ServiceFields, k):
			shared[k] = v.Raw
		default:
			return invalidStep("unknown field %q (a service spec knows %s)", clip.String(k, 64), strings.Join(ServiceFields, ", "))
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if _, ok := shared["commands"]; !ok {
		return s, invalidStep("a service spec needs a \"command\": the process the service runs (for a job container, one that waits, like [\"sleep\", \"infinity\"])")
	}
	st, err := ParseStep(specOf(shared))
	if err != nil {
		return s, err
	}
	if !serviceNamePattern.MatchString(st.Name) {
		return s, invalidStep("service name %q: it is the service's host name on the run's network: 1 to 63 of a-z 0-9 -, not starting or ending with -", clip.String(st.Name, 80))
	}
	switch st.Network {
	case "":
		st.Network = "run"
	case "run", "none":
	default:
		return s, invalidStep("service %s: network %q: a service is on the run's network (\"run\", the default) or on none (\"none\": a job container no step needs to reach)", st.Name, clip.String(st.Network, 64))
	}
	s = Service{Name: st.Name, Image: st.Image, Command: st.Commands[0], Env: st.Env, Secrets: st.Secrets, Limits: st.Limits}
	s.Ready, err = parseReady(st.Name, ready)
	return s, err
}

// AsStep is the step that stands for the service before the policies
// (kind "service"): its command as the step's one command.
func (s Service) AsStep() Step {
	return Step{Name: s.Name, Image: s.Image, Commands: []Command{s.Command}, Env: s.Env, Secrets: s.Secrets, Limits: s.Limits}
}

// ServiceStepFields are the fields of the step that stands for a service
// which a policy may amend.
var ServiceStepFields = []string{"image", "commands", "env", "secrets", "cpus", "memory", "pids", "network", "read_only", "user"}

// WithStep is the service as st (a policy's amendment of AsStep) leaves
// it; its name and readiness check stay.
func (s Service) WithStep(st Step) Service {
	s.Image, s.Env, s.Secrets, s.Limits = st.Image, st.Env, st.Secrets, st.Limits
	if len(st.Commands) > 0 {
		s.Command = st.Commands[0]
	}
	return s
}

// parseReady reads a service's "ready" field.
func parseReady(service string, v gjson.Result) (Ready, error) {
	r := Ready{Timeout: DefaultReadyTimeout, Interval: DefaultReadyInterval}
	if !v.Exists() {
		return r, nil
	}
	err := Fields(v, `field "ready"`, func(k string, v gjson.Result) (err error) {
		switch k {
		case "command":
			var cmds []Command
			if cmds, err = parseCommands(gjson.Parse("[" + v.Raw + "]")); err == nil {
				r.Command = &cmds[0]
			}
		case "port":
			var n int64
			if n, err = integerField("ready.port", v); err == nil && (n < 1 || n > 65535) {
				err = invalidStep("ready.port %d is not a TCP port", n)
			}
			r.Port = int(n)
		case "timeout":
			r.Timeout, err = durationField("ready.timeout", v)
		case "interval":
			r.Interval, err = durationField("ready.interval", v)
		default:
			err = invalidStep("unknown field ready.%s (ready knows command, port, timeout, interval)", clip.String(k, 64))
		}
		return err
	})
	switch {
	case err != nil:
		return r, fmt.Errorf("service %s: %w", service, err)
	case r.Command != nil && r.Port != 0:
		return r, invalidStep("service %s: ready: give a command or a port, not both", service)
	case r.Timeout <= 0 || r.Timeout > MaxReadyTimeout:
		return r, invalidStep("service %s: ready.timeout must be over 0 and at most %s", service, time.Duration(MaxReadyTimeout))
	case r.Interval < Duration(10*time.Millisecond) || r.Interval > r.Timeout:
		return r, invalidStep("service %s: ready.interval must be 10ms or more, and at most ready.timeout", service)
	}
	return r, nil
}

// ParseExec decodes and validates an exec spec: a step run in a service's
// container, so it has no image and no limits but its timeout. It runs in
// the service's environment, with the secrets the service was given.
func ParseExec(spec []byte) (Step, error) {
	if err := CheckJSON(spec, abi.MaxJSONDepth); err != nil {
		return Step{}, err
	}
	shared := map[string]string{"image": `"service"`}
	err := Fields(gjson.ParseBytes(spec), "an exec spec", func(k string, v gjson.Result) error {
		if !slices.Contains(ExecFields, k) {
			return invalidStep("unknown field %q (an exec spec knows %s: it runs in the service's container, with its image, limits and secrets)", clip.String(k, 64), strings.Join(ExecFields, ", "))
		}
		shared[k] = v.Raw
		return nil
	})
	if err != nil {
		return Step{}, err
	}
	return ParseStep(specOf(shared))
}

// specOf writes fields (raw JSON values by name) as one JSON object.
func specOf(fields map[string]string) []byte {
	var b strings.Builder
	b.WriteString("{")
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if b.Len() > 1 {
			b.WriteString(",")
		}
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteString(":")
		b.WriteString(fields[k])
	}
	b.WriteString("}")
	return []byte(b.String())
}

// ExpandServiceVars substitutes the fixed variables (--var) into a
// service's command and readiness command, by the rules of ExpandVars.
func ExpandServiceVars(s Service, vars map[string]string) (Service, error) {
	st := s.AsStep()
	if s.Ready.Command != nil {
		st.Commands = append(st.Commands, *s.Ready.Command)
	}
	st, err := ExpandVars(st, vars)
	if err != nil {
		return s, err
	}
	s.Command = st.Commands[0]
	if s.Ready.Command != nil {
		ready := st.Commands[1]
		s.Ready.Command = &ready
	}
	return s, nil
}
