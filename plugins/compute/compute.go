// Package compute defines how drover starts, finds and destroys machines.
//
// A Provider is deliberately small: the rollout controller persists its own
// state machine and reconciles from what Instances reports, so a provider
// only needs to launch idempotently, list by labels and terminate. Extra
// capabilities (Stopper; Publisher for platforms that boot their own copy of
// an image; PortForwarder and HostRouter for the lab) are separate interfaces
// found by type assertion, so a provider implements only what its platform
// can do, and nothing outside it switches on its type.
//
// Every implementation passes the contract suite in package computetest.
package compute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// ErrNotFound means no instance has the given ID. Terminate never returns
// it (terminating a missing instance succeeds); capability methods such as
// Stopper.Start do, wrapped with the ID.
var ErrNotFound = errors.New("compute: instance not found")

// TokenMemory is how long a provider at least remembers the token of a
// terminated instance, so a late retry of a Launch does not start a machine
// nobody tracks any more.
const TokenMemory = 24 * time.Hour

// State is where an instance is in its life.
type State string

const (
	// Pending: asked for, not yet running.
	Pending State = "pending"
	// Running: the machine runs; whether its services are up is for health
	// checks to say.
	Running State = "running"
	// Stopped: powered off with its disk kept (see Stopper).
	Stopped State = "stopped"
	// Terminated: gone, or died on its own. A provider may keep reporting a
	// dead instance as Terminated until Terminate cleans up after it.
	Terminated State = "terminated"
)

// Image is the disk an instance boots from.
type Image struct {
	// Identity is the image's identity in the catalog (the sha256 of its
	// inputs), carried so instances can be traced back to their build.
	Identity string
	// Path is a local disk file, raw or qcow2, for providers that boot
	// local files; cloud providers use their own published reference.
	Path string
	// Published is the provider's own copy of the image, for providers
	// that implement Publisher: they launch from it and refuse a Spec
	// without it. Zero for providers that boot Path.
	Published PublishedImage
}

// Spec says what to launch.
type Spec struct {
	// Token makes Launch idempotent: launching the same token again returns
	// the instance the first call made. The rollout controller derives it
	// from the rollout ID and the instance's slot, so a resumed rollout
	// finds the machines it started before it was killed.
	Token string
	// Name is a human-readable name; it need not be unique.
	Name  string
	Image Image
	// Labels are how instances are found again: role, color, rollout.
	Labels map[string]string
	// Ports the instance serves, reachable at Endpoint(port).
	Ports []int
	// UserData is handed to the instance at boot (a Vault wrapping token,
	// never a plain secret).
	UserData []byte
	// CloudRole is the platform identity the instance runs as (an IAM role
	// ARN on AWS, for Vault's aws login). Providers without such identities
	// refuse a non-empty value (RefuseCloudRole) rather than launch a
	// machine that cannot log in.
	CloudRole string
}

// RefuseCloudRole is the error of a provider without platform identities
// given a Spec that asks for one; nil when s asks for none.
func (s Spec) RefuseCloudRole(provider string) error {
	if s.CloudRole == "" {
		return nil
	}
	return fmt.Errorf("%s: spec %q asks to run as cloud role %q: this provider has no platform identities (only aws has, with IAM roles)", provider, s.Name, s.CloudRole)
}

// Validate checks what every provider requires of a Spec.
func (s Spec) Validate() error {
	if s.Token == "" {
		return fmt.Errorf("compute: spec %q: empty token", s.Name)
	}
	for k := range s.Labels {
		if k == "" {
			return fmt.Errorf("compute: spec %q: empty label name", s.Name)
		}
	}
	for _, p := range s.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("compute: spec %q: port %d out of range 1-65535", s.Name, p)
		}
	}
	return nil
}

// Clone returns a deep copy, so a provider can keep a Spec its caller goes on
// changing.
func (s Spec) Clone() Spec {
	s.Labels = maps.Clone(s.Labels)
	s.Ports = slices.Clone(s.Ports)
	s.UserData = slices.Clone(s.UserData)
	return s
}

// Instance is a machine as its provider reports it.
type Instance struct {
	ID     string
	Name   string
	Labels map[string]string
	State  State
	// Address is where the instance's ports are reached from drover's host. A stopped instance
	// may have none (EC2 releases its public address at a stop and gives one at the start).
	Address netip.Addr
	// Private is where the provider's other instances reach this one, when that differs from
	// Address (the lab's segment, whose VMs are reached from the host through loopback
	// forwards); zero when they reach it at Address, or not at all.
	Private netip.Addr
	Ports   []int
	Created time.Time
	// Console is the path of the serial console log, if the provider has one.
	Console string
}

// Endpoint is where the instance serves port.
func (i Instance) Endpoint(port int) netip.AddrPort {
	return netip.AddrPortFrom(i.Address, uint16(port))
}

// Clone returns a deep copy.
func (i Instance) Clone() Instance {
	i.Labels = maps.Clone(i.Labels)
	i.Ports = slices.Clone(i.Ports)
	return i
}

// Selector picks instances by labels: an instance matches when it has every
// label of the selector with the same value. An empty selector matches every
// instance of the provider.
type Selector map[string]string

// Matches reports whether labels satisfy s.
func (s Selector) Matches(labels map[string]string) bool {
	for k, v := range s {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Provider launches and destroys instances.
//
// Implementations are safe for concurrent use, and those whose state outlives
// the process (qemu, clouds) are also safe across processes. Every method
// honours ctx: a context done before the call has any effect makes it fail
// with an error wrapping ctx.Err() and change nothing.
type Provider interface {
	// Launch starts an instance, or returns the one an earlier Launch with
	// the same Spec.Token started, whatever its state now; the rest of the
	// Spec is then ignored. A token is not used for a second instance even
	// after the first was terminated: providers remember terminated tokens
	// for at least TokenMemory. It returns once the instance is pending or
	// running, without waiting for its services.
	//
	// When it fails part way, Launch cleans up what it started when it can;
	// if it cannot, the leftover carries the Spec's token and labels, so a
	// retry with the same token adopts or repairs it and a label query finds
	// it for Terminate.
	Launch(ctx context.Context, spec Spec) (Instance, error)

	// Instances lists the provider's instances whose labels match sel,
	// including dead ones not yet cleaned up (State Terminated). The order is
	// unspecified. It reads what the platform reports now, not a cache.
	Instances(ctx context.Context, sel Selector) ([]Instance, error)

	// Terminate destroys an instance and its disk. It returns nil when the
	// instance is already gone or never existed, so it is safe to retry. When
	// it fails, the instance may still run; retry or list it again.
	Terminate(ctx context.Context, id string) error
}

// Stopper is implemented by providers that can power an instance off and on
// again, keeping its disk and address. Both are idempotent: stopping a
// stopped instance or starting a running one succeeds. They return an error
// wrapping ErrNotFound for an unknown or terminated instance.
type Stopper interface {
	Stop(ctx context.Context, id string) error
	Start(ctx context.Context, id string) error
}
