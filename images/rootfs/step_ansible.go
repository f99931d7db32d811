package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepAnsible runs the role's playbook against the tree through Ansible's chroot connection.
type stepAnsible struct{}

func (s *stepAnsible) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if req.Ansible == nil {
		return multistep.ActionContinue
	}
	if err := tree.Ansible(ctx, treeDir(state), req.Ansible.Playbook, req.Ansible.ExtraVars, logWriter(state)); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepAnsible) Cleanup(multistep.StateBag) {}
