package docker_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/docker"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// socketProxy stands between the client and the daemon, so that a test can
// make "the daemon" vanish mid-step by closing it.
type socketProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newSocketProxy(t *testing.T, target string) *socketProxy {
	path := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &socketProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("unix", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			go func() { io.Copy(d, c); d.Close() }()
			go func() { io.Copy(c, d); c.Close() }()
		}
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *socketProxy) host() string { return "unix://" + p.ln.Addr().String() }

// Close stops accepting and cuts every connection, as a dying daemon would.
func (p *socketProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func TestDaemonVanishingMidStepIsAResult(t *testing.T) {
	real := testenv.Docker(t)
	proxy := newSocketProxy(t, "/var/run/docker.sock")
	t.Setenv("DOCKER_HOST", proxy.host())
	before := runtime.NumGoroutine()
	e, err := docker.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, e)
	t.Cleanup(func() {
		// The container outlived its engine connection: remove it through the real daemon.
		ids, _ := real.Labelled(context.Background(), containers.LabelRun, r.RunID)
		for _, id := range ids {
			real.Remove(context.Background(), id)
		}
	})
	live := &liveWriter{first: make(chan struct{})}
	done := make(chan step.ExecResult)
	go func() {
		done <- r.Run(context.Background(), 1, step.Step{Name: "orphaned", Image: image,
			Commands: []step.Command{sh("echo up; sleep 60")}}, containers.Live{Stdout: live})
	}()
	<-live.first
	proxy.Close()
	var res step.ExecResult
	select {
	case res = <-done:
	case <-time.After(45 * time.Second):
		t.Fatal("the step did not end within 45s of the daemon vanishing")
	}
	if res.ErrorKind != step.ErrorKindEngine || res.OK() || res.Stdout != "up\n" || !strings.Contains(res.Error, "could not be removed") {
		t.Errorf("result %+v", res)
	}
	t.Logf("error: %s", res.Error)
	e.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+4 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+4 {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
