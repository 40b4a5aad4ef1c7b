package notebooks

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wflow/wflow/containers"
	"github.com/wflow/wflow/step"
)

// fakeImages is a notebooks.Engine that builds nothing: a build waits for
// release (when set), then the image exists.
type fakeImages struct {
	mu      sync.Mutex
	images  map[string]bool
	builds  int
	release chan struct{}
}

func (f *fakeImages) ImageExists(ctx context.Context, ref string) (bool, error) {
	id, err := f.ImageID(ctx, ref)
	return id != "", err
}

func (f *fakeImages) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images[ref] {
		return "sha256:" + ref, nil
	}
	return "", nil
}

func (f *fakeImages) BuildImage(ctx context.Context, tag string, _ io.Reader, _ map[string]string, _ step.Limits, _ io.Writer) error {
	f.mu.Lock()
	f.builds++
	f.mu.Unlock()
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.images[tag] = true
	f.mu.Unlock()
	return nil
}

// fakeSteps admits what refuse does not refuse, and records what it runs.
type fakeSteps struct {
	mu     sync.Mutex
	refuse bool
	amend  string // an image a policy puts in place of the notebook image
	ran    []step.Step
}

func (f *fakeSteps) Admit(_ context.Context, handle uint32, s step.Step) (step.Step, []step.Decision, *step.ExecResult) {
	if f.refuse {
		return s, nil, &step.ExecResult{Step: s.Name, Handle: handle, ReturnCode: 1, ErrorKind: step.ErrorKindDenied, Error: "refused"}
	}
	if f.amend != "" {
		s.Image = f.amend
	}
	return s, nil, nil
}

func (f *fakeSteps) RunAdmitted(_ context.Context, handle uint32, s step.Step, _ []step.Decision, _ containers.Live) step.ExecResult {
	f.mu.Lock()
	f.ran = append(f.ran, s)
	f.mu.Unlock()
	return step.ExecResult{Step: s.Name, Handle: handle, Image: s.Image}
}

func (f *fakeSteps) AdmitBuild(_ context.Context, _ uint32, _, base string, _ []string) (string, []step.Decision, *step.ExecResult) {
	return base, nil, nil
}

// newFakeRunner is a Runner on fakes, with a run directory holding a
// notebook, and the base image present.
func newFakeRunner(t *testing.T) (*Runner, *fakeImages, *fakeSteps) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.ipynb"), []byte(`{"nbformat":4,"nbformat_minor":5,"metadata":{"kernelspec":{"name":"python3"}},"cells":[]}`), 0o644)
	images := &fakeImages{images: map[string]bool{"base:1": true}}
	steps := &fakeSteps{}
	return &Runner{Engine: images, Steps: steps, RunDir: dir, Base: "base:1", NoLogFile: true}, images, steps
}

// TestConcurrentStepsShareOneBuild: steps that need the same missing image
// while it is being built wait for that build instead of starting theirs.
func TestConcurrentStepsShareOneBuild(t *testing.T) {
	r, images, steps := newFakeRunner(t)
	images.release = make(chan struct{})
	var wg sync.WaitGroup
	results := make([]step.ExecResult, 4)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = r.Run(context.Background(), uint32(i+1), Step{Name: "s", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
		}(i)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		images.mu.Lock()
		started := images.builds
		images.mu.Unlock()
		if started > 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // let the others reach the build
	close(images.release)
	wg.Wait()
	if images.builds != 1 {
		t.Errorf("%d builds for one image, want 1", images.builds)
	}
	built := 0
	for _, res := range results {
		if res.Error != "" || res.Notebook == nil {
			t.Fatalf("result %+v", res)
		}
		if res.Notebook.Built {
			built++
		}
	}
	if built != 1 || len(steps.ran) != 4 {
		t.Errorf("%d results say they built, %d steps ran; want 1 and 4", built, len(steps.ran))
	}
}

// TestRefusedNotebookStepBuildsNothing: the step is put to the policies
// before its image is built.
func TestRefusedNotebookStepBuildsNothing(t *testing.T) {
	r, images, steps := newFakeRunner(t)
	steps.refuse = true
	res := r.Run(context.Background(), 1, Step{Name: "s", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
	if res.ErrorKind != step.ErrorKindDenied || images.builds != 0 || len(steps.ran) != 0 {
		t.Errorf("result %+v, %d builds, %d runs", res, images.builds, len(steps.ran))
	}
}

// TestNotebookImageIsNeverPulled: the step that runs the image wflow built
// says so (LocalImage), so --pull always does not pull it; an image a
// policy put in its place follows --pull.
func TestNotebookImageIsNeverPulled(t *testing.T) {
	r, _, steps := newFakeRunner(t)
	r.Run(context.Background(), 1, Step{Name: "s", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
	steps.amend = "pinned/python@sha256:1"
	r.Run(context.Background(), 2, Step{Name: "s", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
	if len(steps.ran) != 2 || !steps.ran[0].LocalImage || steps.ran[1].LocalImage {
		t.Errorf("ran %+v", steps.ran)
	}
}

// TestCancelledBuild: a notebook step cancelled while its image is built
// says who cancelled it (not a build failure), and a step that needs the
// same image builds it itself.
func TestCancelledBuild(t *testing.T) {
	r, images, _ := newFakeRunner(t)
	images.release = make(chan struct{})
	ctx, cancel := context.WithCancelCause(context.Background())
	first := make(chan step.ExecResult, 1)
	go func() {
		first <- r.Run(ctx, 1, Step{Name: "cancelled", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		images.mu.Lock()
		started := images.builds
		images.mu.Unlock()
		if started > 0 {
			break
		}
	}
	second := make(chan step.ExecResult, 1)
	go func() {
		second <- r.Run(context.Background(), 2, Step{Name: "other", Notebook: "a.ipynb", Output: "a.out.ipynb"}, containers.Live{})
	}()
	cancel(step.ErrCancelledByModule)
	res := <-first
	if res.ErrorKind != step.ErrorKindCancelled || res.Error != "the module cancelled the step (step_cancel) while its notebook image was built" {
		t.Errorf("the cancelled step: %s %q", res.ErrorKind, res.Error)
	}
	close(images.release)
	if res := <-second; res.Error != "" || res.Notebook == nil || !res.Notebook.Built {
		t.Errorf("the other step: %+v", res)
	}
}
