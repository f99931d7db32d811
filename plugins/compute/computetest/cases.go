package computetest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
)

func testLaunch(s *suite) {
	t := s.t
	spec := s.spec("role", "web", "color", "blue")
	before := time.Now().Add(-time.Minute)
	in := s.launch(spec)
	if in.ID == "" {
		t.Fatal("Launch returned an empty ID")
	}
	if in.State != compute.Pending && in.State != compute.Running {
		t.Errorf("State = %q, want pending or running", in.State)
	}
	if !maps.Equal(in.Labels, spec.Labels) {
		t.Errorf("Labels = %v, want %v", in.Labels, spec.Labels)
	}
	if !slices.Equal(in.Ports, spec.Ports) {
		t.Errorf("Ports = %v, want %v", in.Ports, spec.Ports)
	}
	if !in.Address.IsValid() {
		t.Errorf("Address %v is not valid", in.Address)
	}
	for _, port := range spec.Ports {
		if ep := in.Endpoint(port); ep.Addr() != in.Address || int(ep.Port()) != port {
			t.Errorf("Endpoint(%d) = %v", port, ep)
		}
	}
	if in.Created.Before(before) || in.Created.After(time.Now().Add(time.Minute)) {
		t.Errorf("Created = %v, want about now", in.Created)
	}
	got := s.list()
	if len(got) != 1 || got[0].ID != in.ID {
		t.Fatalf("Instances = %v, want only %s", ids(got), in.ID)
	}
	if got[0].Address != in.Address || !maps.Equal(got[0].Labels, spec.Labels) {
		t.Errorf("Instances reports %+v, Launch reported %+v", got[0], in)
	}
}

func testIdempotent(s *suite) {
	t := s.t
	spec := s.spec("role", "web")
	first := s.launch(spec)
	changed := spec
	changed.Name = "another-name"
	again, err := s.p.Launch(s.ctx, changed)
	if err != nil {
		t.Fatalf("second Launch with token %q: %v", spec.Token, err)
	}
	if again.ID != first.ID || again.Address != first.Address {
		t.Fatalf("second Launch with token %q gave %s (%v), first gave %s (%v)",
			spec.Token, again.ID, again.Address, first.ID, first.Address)
	}
	if got := s.list(); len(got) != 1 {
		t.Fatalf("after two Launches with one token: %d instances %v, want 1", len(got), ids(got))
	}
}

func testSpecCopied(s *suite) {
	t := s.t
	spec := s.spec("role", "web")
	in := s.launch(spec)
	spec.Labels["role"] = "changed"
	spec.Ports[0] = 1
	in.Labels["role"] = "changed-too"
	got := s.list("role", "web")
	if len(got) != 1 || got[0].ID != in.ID || !slices.Equal(got[0].Ports, s.opts.Ports) {
		t.Fatalf("changing the caller's Spec or Instance changed the provider's instance: %+v", got)
	}
}

func testInvalid(s *suite) {
	t := s.t
	bad := map[string]func(*compute.Spec){
		"empty token":   func(sp *compute.Spec) { sp.Token = "" },
		"port 0":        func(sp *compute.Spec) { sp.Ports = []int{0} },
		"port 70000":    func(sp *compute.Spec) { sp.Ports = []int{70000} },
		"empty label":   func(sp *compute.Spec) { sp.Labels[""] = "x" },
		"negative port": func(sp *compute.Spec) { sp.Ports = []int{-80} },
	}
	for name, mutate := range bad {
		spec := s.spec()
		mutate(&spec)
		in, err := s.p.Launch(s.ctx, spec)
		if err == nil {
			s.cleanup(in.ID)
			t.Errorf("Launch with %s: no error", name)
		}
	}
	if got := s.list(); len(got) != 0 {
		t.Errorf("invalid Launches left instances %v", ids(got))
	}
}

func testTokenOutlivesTerminate(s *suite) {
	t := s.t
	spec := s.spec()
	in := s.launch(spec)
	if err := s.p.Terminate(s.ctx, in.ID); err != nil {
		t.Fatalf("Terminate(%q): %v", in.ID, err)
	}
	again, err := s.p.Launch(s.ctx, spec)
	if err == nil {
		s.cleanup(again.ID)
		if again.ID != in.ID || again.State != compute.Terminated {
			t.Errorf("Launch with the token of terminated %s gave %s in state %q, want the terminated instance", in.ID, again.ID, again.State)
		}
	}
	if got := live(s.list()); len(got) != 0 {
		t.Errorf("Launch after Terminate with the same token started %v", ids(got))
	}
}

func testSelectors(s *suite) {
	t := s.t
	webBlue := s.launch(s.spec("role", "web", "color", "blue", "rollout", "r1"))
	webGreen := s.launch(s.spec("role", "web", "color", "green", "rollout", "r2"))
	dbBlue := s.launch(s.spec("role", "db", "color", "blue", "rollout", "r1"))
	cases := []struct {
		labels []string
		want   []compute.Instance
	}{
		{nil, []compute.Instance{webBlue, webGreen, dbBlue}},
		{[]string{"role", "web"}, []compute.Instance{webBlue, webGreen}},
		{[]string{"role", "web", "color", "green"}, []compute.Instance{webGreen}},
		{[]string{"color", "blue", "rollout", "r1"}, []compute.Instance{webBlue, dbBlue}},
		{[]string{"role", "web", "color", "red"}, nil},
		{[]string{"role", "mail"}, nil},
		{[]string{"zone", "a"}, nil},
	}
	for _, c := range cases {
		if got, want := ids(s.list(c.labels...)), ids(c.want); !slices.Equal(got, want) {
			t.Errorf("Instances(%v) = %v, want %v", c.labels, got, want)
		}
	}
	all, err := s.p.Instances(s.ctx, nil)
	if err != nil {
		t.Fatalf("Instances(nil): %v", err)
	}
	for _, in := range []compute.Instance{webBlue, webGreen, dbBlue} {
		if !slices.Contains(ids(all), in.ID) {
			t.Errorf("Instances(nil) = %v lacks %s", ids(all), in.ID)
		}
	}
}

func testResultsCopied(s *suite) {
	in := s.launch(s.spec("role", "web"))
	got := s.list("role", "web")
	if len(got) != 1 {
		s.t.Fatalf("Instances = %v, want %s", ids(got), in.ID)
	}
	got[0].Labels["role"] = "db"
	if again := s.list("role", "web"); len(again) != 1 {
		s.t.Fatalf("changing a returned Instance's labels changed the provider's: %v", ids(again))
	}
}

func testTerminateTwice(s *suite) {
	t := s.t
	keep := s.launch(s.spec("role", "web"))
	gone := s.launch(s.spec("role", "web"))
	for i := range 2 {
		if err := s.p.Terminate(s.ctx, gone.ID); err != nil {
			t.Fatalf("Terminate #%d(%q): %v", i+1, gone.ID, err)
		}
	}
	if got := ids(s.list()); !slices.Equal(got, []string{keep.ID}) {
		t.Fatalf("after Terminate(%s): Instances = %v, want [%s]", gone.ID, got, keep.ID)
	}
}

func testTerminateUnknown(s *suite) {
	if err := s.p.Terminate(s.ctx, "no-such-instance-"+s.run); err != nil {
		s.t.Fatalf("Terminate of an unknown ID: %v, want nil", err)
	}
}

// race runs fn n times at once and returns the instances it made.
func (s *suite) race(n int, spec func(i int) compute.Spec) []compute.Instance {
	s.t.Helper()
	out := make([]compute.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i], errs[i] = s.p.Launch(s.ctx, spec(i))
		})
	}
	close(start)
	wg.Wait()
	for _, in := range out {
		if in.ID != "" {
			s.cleanup(in.ID)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.t.Fatalf("concurrent Launch: %v", err)
	}
	return out
}

func testDistinctTokens(s *suite) {
	t := s.t
	specs := make([]compute.Spec, s.opts.Concurrency)
	for i := range specs {
		specs[i] = s.spec("role", "web")
	}
	got := s.race(len(specs), func(i int) compute.Spec { return specs[i] })
	seenID := map[string]bool{}
	seenAddr := map[string]bool{}
	for _, in := range got {
		if seenID[in.ID] {
			t.Errorf("two launches with distinct tokens gave one instance %s", in.ID)
		}
		if seenAddr[in.Address.String()] {
			t.Errorf("two instances share address %v", in.Address)
		}
		seenID[in.ID], seenAddr[in.Address.String()] = true, true
	}
	if n := len(s.list()); n != len(specs) {
		t.Errorf("Instances lists %d, want %d", n, len(specs))
	}
}

func testSameToken(s *suite) {
	t := s.t
	spec := s.spec("role", "web")
	got := s.race(s.opts.Concurrency, func(int) compute.Spec { return spec.Clone() })
	for _, in := range got[1:] {
		if in.ID != got[0].ID {
			t.Errorf("concurrent launches with one token gave %s and %s", got[0].ID, in.ID)
		}
	}
	if n := len(s.list()); n != 1 {
		t.Errorf("Instances lists %d after racing one token, want 1", n)
	}
}

func testCanceled(s *suite) {
	t := s.t
	in := s.launch(s.spec("role", "web"))
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	spec := s.spec("role", "canceled")
	if got, err := s.p.Launch(ctx, spec); !errors.Is(err, context.Canceled) {
		if got.ID != "" {
			s.cleanup(got.ID)
		}
		t.Errorf("Launch with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.p.Instances(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Instances with a canceled context: %v, want context.Canceled", err)
	}
	if err := s.p.Terminate(ctx, in.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("Terminate with a canceled context: %v, want context.Canceled", err)
	}
	if got := s.list("role", "canceled"); len(got) != 0 {
		t.Errorf("a canceled Launch left %v", ids(got))
	}
	if got := live(s.list("role", "web")); len(got) != 1 {
		t.Errorf("a canceled Terminate of %s changed it: %v", in.ID, got)
	}
	// A deadline that passes during a Launch must not leave a half instance
	// behind that a retry cannot adopt.
	short, cancel2 := context.WithTimeout(s.ctx, time.Millisecond)
	defer cancel2()
	spec = s.spec("role", "short")
	if got, err := s.p.Launch(short, spec); err == nil {
		s.cleanup(got.ID)
	}
	again := s.launch(spec)
	got := s.list("role", "short")
	if !slices.Contains(ids(got), again.ID) {
		t.Fatalf("retry after a timed-out Launch returned %s, which Instances does not list: %v", again.ID, ids(got))
	}
	if len(got) == 1 {
		return
	}
	if !s.opts.LateCreates {
		t.Errorf("retry after a timed-out Launch: Instances = %v, want only %s", ids(got), again.ID)
		return
	}
	// The timed-out create landed after the retry's. The label query found it,
	// so Terminate can; further Launches of the token must agree on one of
	// the two (a platform whose creation times tie within a second may pick
	// either).
	for _, in := range got {
		if in.ID != again.ID {
			s.cleanup(in.ID)
		}
	}
	third := s.launch(spec)
	if !slices.Contains(ids(got), third.ID) {
		t.Errorf("Launch after a late create of its token returned %s, want one of %v", third.ID, ids(got))
	}
	if fourth := s.launch(spec); fourth.ID != third.ID {
		t.Errorf("two Launches after a late create of its token returned %s, then %s", third.ID, fourth.ID)
	}
}

func testStopper(s *suite) {
	t := s.t
	st, ok := s.p.(compute.Stopper)
	if !ok {
		t.Skip("provider does not implement compute.Stopper")
	}
	in := s.launch(s.spec("role", "web"))
	state := func() compute.State {
		t.Helper()
		got := s.list("role", "web")
		if len(got) != 1 {
			t.Fatalf("Instances = %v, want %s", ids(got), in.ID)
		}
		return got[0].State
	}
	for i := range 2 {
		if err := st.Stop(s.ctx, in.ID); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	if got := state(); got != compute.Stopped {
		t.Errorf("after Stop: state %q", got)
	}
	for i := range 2 {
		if err := st.Start(s.ctx, in.ID); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
	}
	if got := state(); got != compute.Pending && got != compute.Running {
		t.Errorf("after Start: state %q", got)
	}
	if err := st.Stop(s.ctx, "no-such-instance-"+s.run); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("Stop of an unknown ID: %v, want ErrNotFound", err)
	}
	if err := st.Start(s.ctx, "no-such-instance-"+s.run); !errors.Is(err, compute.ErrNotFound) {
		t.Errorf("Start of an unknown ID: %v, want ErrNotFound", err)
	}
}
