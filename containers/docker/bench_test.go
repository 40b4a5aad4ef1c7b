package docker_test

import (
	"context"
	"io"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// BenchmarkTrivialStep measures one step running `true` next to its
// baseline, the raw Docker client calls a user would otherwise make
// (create, start, wait, remove), against the same daemon in the same run.
//
//	go test -run '^$' -bench TrivialStep -benchtime 20x ./containers/docker
func BenchmarkTrivialStep(b *testing.B) {
	e := testenv.Docker(b)
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()

	b.Run("baseline=raw-client", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"true"},
				Labels: map[string]string{containers.LabelRun: "bench-baseline"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
			if err != nil {
				b.Fatal(err)
			}
			waitc, errc := cli.ContainerWait(ctx, c.ID, container.WaitConditionNextExit)
			if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				b.Fatal(err)
			}
			select {
			case <-waitc:
			case err := <-errc:
				b.Fatal(err)
			}
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wflow=engine-run", func(b *testing.B) {
		spec := containers.ContainerSpec{Image: testenv.BusyboxImage, Args: []string{"true"}, RunDir: b.TempDir(),
			WorkDir: "/wflow", Limits: step.Limits{Network: "none"}, Labels: map[string]string{containers.LabelRun: "bench-engine"}}
		for i := 0; i < b.N; i++ {
			if exit, err := e.Run(ctx, spec, io.Discard, io.Discard); err != nil || exit.Code != 0 {
				b.Fatal(exit, err)
			}
		}
	})
	b.Run("wflow=runner-step", func(b *testing.B) {
		r := &containers.Runner{Engine: e, RunDir: b.TempDir(), RunID: "bench-runner", Pull: containers.PullNever}
		st := step.Step{Name: "true", Image: testenv.BusyboxImage, Commands: []step.Command{{Argv: []string{"true"}}}}
		for i := 0; i < b.N; i++ {
			if res := r.Run(ctx, uint32(i+1), st, containers.Live{}); !res.OK() {
				b.Fatal(res.Error)
			}
		}
	})
}
