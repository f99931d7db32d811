package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/rollout/health"
)

// An instance the handoff (or drover volumes) stopped comes back through startForVolumes: it is
// started while the volumes' holder still has them and serves, and the volumes move only once its
// drover-boot waits for them, so a rollback's downtime holds no boot. Before it starts, its
// user-data is written again (freshUserData): a role with Vault secrets gets a new wrapped
// credential (the one it booted with the first time is spent), and the volumes are named as the
// record has them now (a restore may have replaced one since).

// wantsFreshCredential reports whether a stopped instance of the role needs a new boot credential
// before it starts again.
func (s *session) wantsFreshCredential() bool {
	cr := s.c.opts.Credentials
	return cr != nil && cr.Wants(s.role.Name)
}

// checkRestartable refuses, before anything is stopped, a role whose instances could not come back
// after a stop: its secrets need a fresh credential in the user-data, and the provider cannot
// change a stopped instance's user-data. Nothing is changed either way.
func (s *session) checkRestartable() error {
	if _, ok := s.comp.(compute.UserDataEditor); ok || !s.wantsFreshCredential() {
		return nil
	}
	return fmt.Errorf("rollout: role %q: compute %q cannot change a stopped instance's user-data (it does not implement compute.UserDataEditor), "+
		"and the role's secrets need a new Vault credential there each time an instance starts again (the one it booted with is spent): "+
		"an instance stopped for the handoff or for drover volumes could never fetch its secrets again; deploy the role on a compute type that can (qemu, aws, vultr), or move the secrets out of it",
		s.role.Name, s.dep.Compute)
}

// freshUserData rewrites the user-data of stopped instance in before it starts again: a new boot
// credential when the role wants one (the instance's first one is spent), and vols as drover-boot
// mounts them. Without compute.UserDataEditor it changes nothing when no credential is needed (the
// user-data of the launch names the volumes) and refuses otherwise (checkRestartable). Each call
// issues a new credential; one never delivered expires by itself. The instance keeps the label of
// its first credential: providers cannot relabel an instance, and the new SecretID is used at the
// boot that follows or expires by its TTL. Idempotent: a rerun writes the same volumes and a newer
// credential.
func (s *session) freshUserData(ctx context.Context, in compute.Instance, vols []HandoffVolume) error {
	ed, ok := s.comp.(compute.UserDataEditor)
	if !ok {
		return s.checkRestartable()
	}
	if s.c.opts.BootVolumes == nil {
		return fmt.Errorf("rollout: role %q: no way to name the volumes in %s's user-data (Options.BootVolumes is nil)", s.role.Name, in.ID)
	}
	var issued []byte
	if s.wantsFreshCredential() {
		image := ""
		if r := s.byID(in.Labels[LabelRollout]); r != nil {
			image = r.Image.Identity
		}
		ud, _, err := s.c.opts.Credentials.Issue(ctx, s.role.Name, in.Name, image)
		if err != nil {
			return fmt.Errorf("rollout: role %q: issuing a new boot credential for %s, which starts again: %w", s.role.Name, in.ID, err)
		}
		issued = ud
	}
	err := ed.EditUserData(ctx, in.ID, func(old []byte) ([]byte, error) {
		if issued != nil {
			old = issued
		}
		return s.c.opts.BootVolumes(old, s.role.Name, s.bootVolumesOf(vols))
	})
	if err != nil {
		return fmt.Errorf("rollout: role %q: rewriting the user-data of %s before it starts again: %w", s.role.Name, in.ID, err)
	}
	return nil
}

// startForVolumes makes instance id ready to take rec's volumes while their holder keeps them: a
// stopped id gets fresh user-data and is started (each step persisted first, crash points
// handoff-userdata and handoff-start), then its console must show drover-boot waiting for each
// volume. A running id is only waited for. A failure leaves the volumes where they are.
func (s *session) startForVolumes(ctx context.Context, st compute.Stopper, rec *Record, id string) error {
	in, err := s.instanceByID(ctx, id)
	if err != nil {
		return err
	}
	vols := rec.Progress.Handoff.Volumes
	switch in.State {
	case compute.Running, compute.Pending:
	case compute.Stopped:
		if err := s.timedStep(ctx, rec, "handoff-userdata", "user-data of "+id, "user-data of "+id+" written (volumes, and a new boot credential where the role has secrets)", func() error {
			return s.freshUserData(ctx, in, vols)
		}); err != nil {
			return err
		}
		if err := s.timedStep(ctx, rec, "handoff-start", "start "+id, "started "+id, func() error {
			if err := st.Start(ctx, id); err != nil {
				return fmt.Errorf("rollout: role %q: starting %s to give it the volumes: %w", s.role.Name, id, err)
			}
			return nil
		}); err != nil {
			return err
		}
		if in, err = s.instanceByID(ctx, id); err != nil {
			return err
		}
	default:
		return fmt.Errorf("rollout: role %q: instance %s, which should take the volumes, is %s", s.role.Name, id, in.State)
	}
	start := time.Now()
	if err := s.consoleWaits(ctx, in, vols); err != nil {
		return fmt.Errorf("rollout: role %q: %s was to take the volumes, which stay where they are: %w", s.role.Name, id, err)
	}
	s.step(rec.ID, "handoff", fmt.Sprintf("%s booted: drover-boot waits for its %d volume(s) (seen in %s)", id, len(vols), human(time.Since(start))))
	return nil
}

// instanceByID is one of the role's instances, any state but terminated.
func (s *session) instanceByID(ctx context.Context, id string) (compute.Instance, error) {
	ins, err := s.comp.Instances(ctx, compute.Selector{LabelRole: s.role.Name})
	if err != nil {
		return compute.Instance{}, fmt.Errorf("rollout: role %q: listing instances: %w", s.role.Name, err)
	}
	for _, in := range ins {
		if in.ID == id && in.State != compute.Terminated {
			return in, nil
		}
	}
	return compute.Instance{}, fmt.Errorf("rollout: role %q: instance %s, which should hold the volumes, is gone: %w", s.role.Name, id, compute.ErrNotFound)
}

// consoleWaits polls in's console until drover-boot says there that it waits for each of vols,
// which it does only once its secrets are written. It gives up after the longest health deadline
// (at least 5 minutes) with a *health.Failure. An instance whose provider shows no console is
// taken as ready once it runs. A restarted instance's console starts again (qemu truncates it), so
// what it shows is of the current boot.
func (s *session) consoleWaits(ctx context.Context, in compute.Instance, vols []HandoffVolume) error {
	if in.Console == "" {
		return nil
	}
	deadline := 5 * time.Minute
	for _, c := range s.checks {
		deadline = max(deadline, c.Deadline)
	}
	end := time.Now().Add(deadline)
	for _, v := range vols {
		want := "drover-boot: waiting for volume " + v.Name + " "
		for {
			b, _ := os.ReadFile(in.Console)
			if strings.Contains(string(b), want) {
				break
			}
			if time.Now().After(end) {
				return health.NewFailure("boot", target(in), "no \""+strings.TrimSpace(want)+"\" on the console", "deadline "+deadline.String()+" passed")
			}
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// bootFailure is the health failure consoleWaits gave up with, or nil.
func bootFailure(err error) *health.Failure {
	var f *health.Failure
	if errors.As(err, &f) {
		return f
	}
	return nil
}
