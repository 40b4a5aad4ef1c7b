package swarm_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wflow/wflow/containers/enginetest"
	"github.com/wflow/wflow/containers/swarm"
	"github.com/wflow/wflow/internal/testenv"
)

// TestConformance runs the engine conformance suite against the swarm
// engine, on the local engine as a single-node swarm: with the services
// the engine picks for this engine's version, and with replicated jobs
// (what Docker 24 and later get) when that was not it. On an engine older
// than 24 the jobs' tasks stay in the swarm's store for good (moby#42789,
// about 26 a run): so that path runs in CI, whose swarm is thrown away,
// or where WFLOW_TEST_SWARM_JOBS=1 accepts it.
func TestConformance(t *testing.T) {
	e := testenv.Swarm(t)
	if swarm.UsesJobs(e) {
		t.Run("jobs", func(t *testing.T) { conformance(t, e) })
		return
	}
	t.Run("one-shot services", func(t *testing.T) { conformance(t, e) })
	t.Run("jobs", func(t *testing.T) {
		if !testenv.InCI() && os.Getenv("WFLOW_TEST_SWARM_JOBS") != "1" {
			t.Skip("jobs on this engine (older than Docker 24) leave their tasks in the swarm for good (moby#42789): set WFLOW_TEST_SWARM_JOBS=1 to test them anyway")
		}
		jobs := testenv.Swarm(t)
		swarm.UseJobs(jobs)
		conformance(t, jobs)
	})
}

func conformance(t *testing.T, e *swarm.Engine) {
	h := enginetest.Harness{
		Engine:   e,
		Image:    testenv.BusyboxImage,
		Missing:  "wflow-test/never-built:conformance",
		Labelled: e.Labelled,
		Isolated: true,
		Gaps: enginetest.Gaps{
			OnlyLoopback: "swarm has no network \"none\" for services (moby#42204): a job without network is alone with its run on an internal overlay network",
			SwapLimited:  "a service cannot set its memory+swap limit",
		},
	}
	if !e.NoNewPrivileges() {
		h.Gaps.NoNewPrivileges = "this engine's API is older than 1.44 (Docker 25), which drops no-new-privileges from a service"
	}
	enginetest.Run(t, h)
}

// TestRefusesWeakerIsolation: on an engine that cannot set
// no-new-privileges on a job, the engine does not start unless the user
// accepted it.
func TestRefusesWeakerIsolation(t *testing.T) {
	e := testenv.Swarm(t)
	if e.NoNewPrivileges() {
		t.Skip("this engine sets no-new-privileges on jobs: nothing to refuse")
	}
	t.Setenv(swarm.AllowNewPrivileges, "")
	_, err := swarm.New(context.Background())
	if !errors.Is(err, swarm.ErrWeaker) || !strings.Contains(err.Error(), swarm.AllowNewPrivileges+"=allow") {
		t.Fatalf("New without %s: %v, want ErrWeaker naming the variable", swarm.AllowNewPrivileges, err)
	}
}
