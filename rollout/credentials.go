package rollout

import (
	"context"
	"fmt"

	"github.com/drover-dev/drover/plugins/compute"
)

// LabelCredential is the label that names an instance's boot credential by its accessor (for Vault,
// the SecretID's accessor): never the credential itself. The label lives with the instance at the
// provider, so whichever command destroys the instance, after whatever crash, revokes it too.
const LabelCredential = "credential"

// Credentials gives each new instance a credential of its own for boot (DESIGN §6: a single-use,
// response-wrapped Vault SecretID) and takes it back when the instance goes. cmd/ implements it
// with a secrets.Broker.
type Credentials interface {
	// Issue returns the user-data of a new instance of role (it holds the wrapped credential: it is
	// never stored or logged) and the credential's accessor, which is. Each call issues a new
	// credential; one that is never delivered expires by itself.
	// instance is the new instance's name and image the identity of its image ("sha256:..."),
	// recorded with the credential.
	Issue(ctx context.Context, role, instance, image string) (userData []byte, accessor string, err error)
	// Revoke destroys the credential named by accessor. It is idempotent: nil when it is gone.
	Revoke(ctx context.Context, role, accessor string) error
	// Wants reports whether instances of role need a credential (the role declares secrets).
	Wants(role string) bool
}

// credentialFor issues the credential of a slot and puts it on the launch spec.
func (s *session) credentialFor(ctx context.Context, r *Record, slot int, spec *compute.Spec) error {
	cr := s.c.opts.Credentials
	if cr == nil || !cr.Wants(r.Role) {
		return nil
	}
	ud, accessor, err := cr.Issue(ctx, r.Role, spec.Name, r.Image.Identity)
	if err != nil {
		return fmt.Errorf("rollout: role %q: issuing the boot credential of slot %d: %w", r.Role, slot, err)
	}
	spec.UserData = ud
	if accessor != "" { // none for a role that logs in by its cloud identity: nothing to revoke
		spec.Labels[LabelCredential] = accessor
	}
	return nil
}

// revokeCredential takes back an instance's credential before the instance is destroyed. An
// instance launched again by token keeps its first credential; the others issued on the way were
// never delivered and expire.
func (c *Controller) revokeCredential(ctx context.Context, in compute.Instance) error {
	cr := c.opts.Credentials
	acc := in.Labels[LabelCredential]
	if cr == nil || acc == "" {
		return nil
	}
	if err := cr.Revoke(ctx, in.Labels[LabelRole], acc); err != nil {
		return fmt.Errorf("revoking the boot credential of %s: %w", in.ID, err)
	}
	return nil
}
