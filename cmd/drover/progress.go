package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// buildProgress prints build steps: one line per finished step; on a terminal also a live status line
// of the steps in flight; with --output json one JSON event per step.
type buildProgress struct {
	mu       sync.Mutex
	out      io.Writer
	json     bool
	verbose  bool
	tty      bool
	running  map[string]runningStep // by role
	stopTick chan struct{}
	lastLen  int
}

type runningStep struct {
	step  string
	since time.Time
}

func newBuildProgress(out io.Writer, asJSON, verbose bool) *buildProgress {
	p := &buildProgress{out: out, json: asJSON, verbose: verbose, running: map[string]runningStep{}}
	if f, ok := out.(*os.File); ok && !asJSON && term.IsTerminal(int(f.Fd())) && os.Getenv("CI") == "" {
		p.tty = true
		p.stopTick = make(chan struct{})
		go p.tick()
	}
	return p
}

// Event is one line of drover build --output json.
type Event struct {
	Event   string  `json:"event"` // step, image, skipped, failed
	Role    string  `json:"role"`
	Step    string  `json:"step,omitempty"`
	State   string  `json:"state,omitempty"` // started, finished, failed
	Seconds float64 `json:"seconds,omitempty"`
	Error   string  `json:"error,omitempty"`
	Image   any     `json:"image,omitempty"`
	Cached  bool    `json:"cached,omitempty"`
	// Elsewhere: cached because the shared state store records the image, built on another machine
	// and published where the role deploys; its disk is not here.
	Elsewhere bool `json:"elsewhere,omitempty"`
}

func (p *buildProgress) event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := json.Marshal(e)
	fmt.Fprintln(p.out, string(b))
}

func (p *buildProgress) StepStarted(role, step string) {
	if p.json {
		p.event(Event{Event: "step", Role: role, Step: step, State: "started"})
		return
	}
	p.mu.Lock()
	p.running[role] = runningStep{step: step, since: time.Now()}
	p.mu.Unlock()
}

func (p *buildProgress) StepFinished(role, step string, elapsed time.Duration, err error) {
	if p.json {
		e := Event{Event: "step", Role: role, Step: step, State: "finished", Seconds: elapsed.Seconds()}
		if err != nil {
			e.State, e.Error = "failed", err.Error()
		}
		p.event(e)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, role)
	if step == "cache" && err == nil {
		return // the summary line says "up to date" or the build goes on: no line for the lookup
	}
	mark := ""
	if err != nil {
		mark = "  FAILED"
	}
	p.println(fmt.Sprintf("%s: %-10s %7s%s", role, step, round(elapsed), mark))
}

// Output is where tool output goes: shown with --verbose, always in the build log.
func (p *buildProgress) Output(role string) io.Writer {
	if !p.verbose || p.json {
		return io.Discard
	}
	return &prefixWriter{p: p, prefix: role + "| "}
}

// Line prints a line above the live status.
func (p *buildProgress) Line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.println(s)
}

func (p *buildProgress) println(s string) {
	if p.tty && p.lastLen > 0 {
		fmt.Fprintf(p.out, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.lastLen = 0
	}
	fmt.Fprintln(p.out, s)
}

func (p *buildProgress) tick() {
	spin := []string{"|", "/", "-", `\`}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stopTick:
			return
		case <-t.C:
		}
		p.mu.Lock()
		var parts []string
		for role, r := range p.running {
			parts = append(parts, fmt.Sprintf("%s: %s %s", role, r.step, round(time.Since(r.since))))
		}
		sort.Strings(parts)
		if len(parts) > 0 {
			line := spin[i%len(spin)] + " " + strings.Join(parts, ", ")
			pad := ""
			if n := p.lastLen - len(line); n > 0 {
				pad = strings.Repeat(" ", n)
			}
			fmt.Fprintf(p.out, "\r%s%s", line, pad)
			p.lastLen = len(line)
		}
		p.mu.Unlock()
	}
}

// Close stops the live status line.
func (p *buildProgress) Close() {
	if p.stopTick != nil {
		close(p.stopTick)
		p.mu.Lock()
		p.println("")
		p.mu.Unlock()
	}
}

type prefixWriter struct {
	p      *buildProgress
	prefix string
	buf    []byte
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		w.p.Line(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func round(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
