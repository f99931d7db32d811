package rootfs

import (
	"context"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// stepSBOM records the installed packages (the SBOM) and an index of every file, for images diff.
type stepSBOM struct{}

const fileIndexName = "files.txt.gz"

func (s *stepSBOM) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	pkgs, err := tree.Packages(treeDir(state))
	if err != nil {
		return fail(state, err)
	}
	out := make([]images.Package, len(pkgs))
	for i, p := range pkgs {
		out[i] = images.Package{Name: p.Name, Version: p.Version, Arch: p.Arch}
	}
	state.Put(keyPackages, out)
	if err := images.WriteFileIndex(treeDir(state), stagingPath(state, fileIndexName)); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepSBOM) Cleanup(multistep.StateBag) {}
