package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
)

// State bag keys shared by the steps.
const (
	keyRequest  = "request"
	keyStaging  = "staging"   // *images.Staging
	keyTree     = "tree"      // string: the work tree being customized
	keyCopied   = "copied"    // time.Time: a change time the work tree's copied files are older than
	keyBase     = "base_tree" // string: the cached base tree
	keyOverlay  = "overlay"   // *tree.Overlay: the work tree, when it is an overlay of the base tree
	keyLog      = "log"       // io.Writer: the build log (and progress output)
	keyDisk     = "disk"      // disk.Result
	keyCard     = "card"      // disk.CardResult, for the "rpi" builder
	keyPackages = "packages"  // []images.Package
	keyScan     = "scan"      // images.ScanStats
	keyTimings  = "timings"   // *[]images.StepTime
	keyResult   = "result"    // *Result
	keyError    = "error"     // *StepError
)

// steps is the pipeline, in order. Each is a step_*.go file.
func steps() []namedStep {
	return []namedStep{
		{"cache", &stepCache{}},
		{"stage", &stepStage{}},
		{"base tree", &stepBaseTree{}},
		{"work tree", &stepWorkTree{}},
		{"repositories", &stepRepositories{}},
		{"files", &stepFiles{}},
		{"containers", &stepContainers{}},
		{"agent", &stepAgent{}},
		{"run", &stepRun{}},
		{"ansible", &stepAnsible{}},
		{"hygiene", &stepHygiene{}},
		{"scan", &stepScan{}},
		{"sbom", &stepSBOM{}},
		{"disk", &stepDisk{}},
		{"formats", &stepFormats{}},
		{"manifest", &stepManifest{}},
	}
}

type namedStep struct {
	name string
	step multistep.Step
}

// Build bakes one image, or returns the catalog's copy when its identity is already there. On failure
// or cancellation every step's Cleanup has run: no mounts, no temporary trees, no staging directory,
// and the catalog is as it was.
func Build(ctx context.Context, req Request) (*Result, error) {
	state := new(multistep.BasicStateBag)
	state.Put(keyRequest, &req)
	timings := &[]images.StepTime{}
	state.Put(keyTimings, timings)
	var runSteps []multistep.Step
	for _, s := range steps() {
		runSteps = append(runSteps, &timedStep{name: s.name, inner: s.step})
	}
	runner := &multistep.BasicRunner{Steps: runSteps}
	runner.Run(ctx, state)

	if v, ok := state.GetOk(keyError); ok {
		return nil, v.(*StepError)
	}
	if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled || ctx.Err() != nil {
		return nil, &StepError{Role: req.Role, Step: "build", Err: fmt.Errorf("interrupted: %w", context.Cause(ctx))}
	}
	if v, ok := state.GetOk(keyResult); ok {
		return v.(*Result), nil
	}
	return nil, &StepError{Role: req.Role, Step: "build", Err: errors.New("the pipeline ended without a result")}
}

// timedStep reports a step to Progress, records its time, and turns its error into a StepError.
type timedStep struct {
	name  string
	inner multistep.Step
	start time.Time
}

func (t *timedStep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := state.Get(keyRequest).(*Request)
	if req.Progress != nil {
		req.Progress.StepStarted(req.Role, t.name)
	}
	if w, ok := state.GetOk(keyLog); ok {
		fmt.Fprintf(w.(io.Writer), "==> %s: %s\n", req.Role, t.name)
	}
	t.start = time.Now()
	action := t.inner.Run(ctx, state)
	elapsed := time.Since(t.start)
	var err error
	if v, ok := state.GetOk(keyError); ok && action == multistep.ActionHalt {
		se := v.(*StepError)
		if se.Step == "" {
			se.Step = t.name
		}
		err = se.Err
	} else if action == multistep.ActionHalt && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	timings := state.Get(keyTimings).(*[]images.StepTime)
	*timings = append(*timings, images.StepTime{Name: t.name, Seconds: elapsed.Seconds()})
	if req.Progress != nil {
		req.Progress.StepFinished(req.Role, t.name, elapsed, err)
	}
	return action
}

func (t *timedStep) Cleanup(state multistep.StateBag) { t.inner.Cleanup(state) }

// fail records a step's error and halts the pipeline.
func fail(state multistep.StateBag, err error) multistep.StepAction {
	req := state.Get(keyRequest).(*Request)
	state.Put(keyError, &StepError{Role: req.Role, Err: err})
	if w, ok := state.GetOk(keyLog); ok {
		fmt.Fprintf(w.(io.Writer), "error: %v\n", err)
	}
	return multistep.ActionHalt
}

// logWriter is where a step's tool output goes: the build log, and the progress output if any.
func logWriter(state multistep.StateBag) io.Writer {
	if w, ok := state.GetOk(keyLog); ok {
		return w.(io.Writer)
	}
	return io.Discard
}

func treeDir(state multistep.StateBag) string { return state.Get(keyTree).(string) }

func request(state multistep.StateBag) *Request { return state.Get(keyRequest).(*Request) }

func stagingPath(state multistep.StateBag, name string) string {
	return filepath.Join(state.Get(keyStaging).(*images.Staging).Dir, name)
}
