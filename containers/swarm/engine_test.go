package swarm_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// TestJobsNeverPullByTag: a node's agent pulls a task's image by tag
// before it starts it, whatever wflow's pull policy; so a job whose image
// the runner may not pull names the image by id, and no registry hears of
// it. The image is tagged for a "registry" on a local port that counts who
// knocks.
func TestJobsNeverPullByTag(t *testing.T) {
	e := testenv.Swarm(t)
	ctx := context.Background()
	registry, contacts := testenv.Knocks(t)
	ref := registry + "/wflow-swarm-probe:latest"
	if err := e.Client().ImageTag(ctx, testenv.BusyboxImage, ref); err != nil {
		t.Fatal(err)
	}
	defer e.Client().ImageRemove(ctx, ref, image.RemoveOptions{})
	if _, err := e.EnsureImage(ctx, ref, containers.PullNever); err != nil {
		t.Fatal(err)
	}
	spec := containers.ContainerSpec{
		Image: ref, Args: []string{"true"}, RunDir: t.TempDir(), WorkDir: "/wflow",
		Labels: map[string]string{containers.LabelRun: fmt.Sprintf("swarm-pull-%d", time.Now().UnixNano())},
		Limits: step.Limits{Network: "none"},
	}
	exit, err := e.Run(ctx, spec, io.Discard, io.Discard)
	if err != nil || exit.Code != 0 {
		t.Fatalf("exit %+v, %v", exit, err)
	}
	if n := contacts(); n != 0 {
		t.Errorf("the registry in the image's name was contacted %d times", n)
	}
}
