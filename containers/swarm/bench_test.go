package swarm_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/containers/swarm"
	"github.com/wflow/wflow/internal/testenv"
	"github.com/wflow/wflow/step"
)

// BenchmarkKindOfService: one `true` through the engine's Run as the
// service this engine's version gets, next to the other kind (a replicated
// job, or a one-shot service), in the same run: what the one-shot services
// of Docker before 24 cost against jobs. On such an engine the jobs leave
// their tasks in the swarm for good (moby#42789).
//
//	go test -run '^$' -bench KindOfService -benchtime 10x -count 3 ./containers/swarm
func BenchmarkKindOfService(b *testing.B) {
	oneShot := testenv.Swarm(b)
	jobs := testenv.Swarm(b)
	swarm.UseJobs(jobs)
	type kind struct {
		name string
		e    *swarm.Engine
	}
	kinds := []kind{{"jobs", jobs}}
	if !swarm.UsesJobs(oneShot) {
		kinds = []kind{{"one-shot", oneShot}, {"jobs", jobs}}
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			ctx := context.Background()
			spec := containers.ContainerSpec{Image: testenv.BusyboxImage, Args: []string{"true"}, RunDir: b.TempDir(), WorkDir: "/wflow",
				Limits: step.Limits{Network: "none"}, Labels: map[string]string{containers.LabelRun: fmt.Sprintf("bench-%s-%d", k.name, time.Now().UnixNano())}}
			for i := 0; i < b.N; i++ {
				if exit, err := k.e.Run(ctx, spec, io.Discard, io.Discard); err != nil || exit.Code != 0 {
					b.Fatal(exit, err)
				}
			}
		})
	}
}
