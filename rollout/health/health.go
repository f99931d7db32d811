// Package health runs the readiness checks of a role's deploy block against instances: a gate that
// waits for every check to pass a number of times in a row before a deadline, and a watch that keeps
// checking for a window after cutover and reports the first check that keeps failing.
//
// Check types are pluggable through a Registry: http, https, tcp and postgres are built in; dns and
// vault register the same way when they are written. Probes dial through a Dialer, so tests and
// unusual networks can route them.
package health

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/drover-dev/drover/fleet"
)

// Dialer opens connections for probes; *net.Dialer is one.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Prober asks one endpoint once whether it is healthy. It returns nil when it is, and otherwise an
// error that says what was wrong, for the failure report. It must honour ctx, which carries the
// check's timeout.
type Prober interface {
	Probe(ctx context.Context, target netip.AddrPort) error
}

// ProberFunc makes a function a Prober.
type ProberFunc func(ctx context.Context, target netip.AddrPort) error

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context, target netip.AddrPort) error { return f(ctx, target) }

// Factory builds the prober of one check type from the fleet file's health block.
type Factory func(hc fleet.HealthCheck, d Dialer) (Prober, error)

// Registry maps check types to their factories. It is built per controller, never global.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns a registry with the built-in types: http, https, tcp, postgres, dns and vault.
func NewRegistry() *Registry {
	r := &Registry{factories: map[string]Factory{}}
	r.Register("http", newHTTP(false))
	r.Register("https", newHTTP(true))
	r.Register("tcp", newTCP)
	r.Register("postgres", newPostgres)
	r.Register("dns", newDNS)
	r.Register("vault", newVault)
	return r
}

// Register adds or replaces the factory of a check type.
func (r *Registry) Register(typ string, f Factory) { r.factories[typ] = f }

// Types lists the registered check types, sorted.
func (r *Registry) Types() []string {
	out := make([]string, 0, len(r.factories))
	for t := range r.factories {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Supports reports whether a check type is registered.
func (r *Registry) Supports(typ string) bool { _, ok := r.factories[typ]; return ok }

// Build makes a Check of a fleet file health block. Zero timings get the fleet file's defaults.
func (r *Registry) Build(hc fleet.HealthCheck, d Dialer) (Check, error) {
	f, ok := r.factories[hc.Type]
	if !ok {
		return Check{}, fmt.Errorf("health: check type %q is not supported yet (supported: %s)", hc.Type, strings.Join(r.Types(), ", "))
	}
	if d == nil {
		d = &net.Dialer{}
	}
	p, err := f(hc, d)
	if err != nil {
		return Check{}, fmt.Errorf("health: %s check on port %d: %w", hc.Type, hc.Port, err)
	}
	c := Check{Name: Describe(hc), Type: hc.Type, Port: hc.Port, Interval: hc.Interval, Timeout: hc.Timeout,
		Healthy: hc.Healthy, Deadline: hc.Deadline, Prober: p}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Healthy < 1 {
		c.Healthy = 1
	}
	if c.Deadline <= 0 {
		c.Deadline = 5 * time.Minute
	}
	return c, nil
}

// Describe names a health block for humans: "http :80 GET / expect 200".
func Describe(hc fleet.HealthCheck) string {
	switch hc.Type {
	case "http", "https":
		return fmt.Sprintf("%s :%d GET %s expect %d", hc.Type, hc.Port, hc.Path, hc.Expect)
	case "dns":
		return fmt.Sprintf("dns :%d query %s", hc.Port, hc.Query)
	case "vault":
		if hc.TLS() {
			return fmt.Sprintf("vault https :%d", hc.Port)
		}
		return fmt.Sprintf("vault :%d", hc.Port)
	default:
		return fmt.Sprintf("%s :%d", hc.Type, hc.Port)
	}
}

// Check is one configured check: what to ask and how often.
type Check struct {
	Name     string // Describe of the health block
	Type     string
	Port     int
	Interval time.Duration // between probes
	Timeout  time.Duration // of one probe
	Healthy  int           // successes in a row that make a target healthy (and, in Watch, failures in a row that make it unhealthy)
	Deadline time.Duration // for the gate: how long a target may take to become healthy
	Prober   Prober
}

// Target is what checks run against: an instance, or the public address traffic goes through.
type Target struct {
	Name    string     // an instance ID, or "failover 127.0.0.100"
	Addr    netip.Addr // checks probe Addr:Check.Port
	Console string     // path of the instance's console log, "" when there is none
}

// probe runs one probe of c against t with c's timeout.
func probe(ctx context.Context, c Check, t Target) error {
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	err := c.Prober.Probe(pctx, netip.AddrPortFrom(t.Addr, uint16(c.Port)))
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("no answer within %s: %w", c.Timeout, err)
	}
	return err
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
