package rootfs

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// stepSBOM records the installed packages (the SBOM) and an index of every file, for images diff.
// The file index takes the hashes of files unchanged since the work tree was copied from the base
// tree's index, made once per base tree and kept beside it (trees/<key>.files.gz): a rebuild rereads
// only what the role's steps changed.
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
	var reuse *images.IndexReuse
	if copied, ok := state.GetOk(keyCopied); ok {
		baseDir := state.Get(keyBase).(string)
		base, err := baseFileIndex(baseDir+".files.gz", baseDir)
		if err != nil {
			// Only a cost: every file is hashed.
			fmt.Fprintf(logWriter(state), "sbom: the base tree's file index: %v\n", err)
		} else {
			reuse = &images.IndexReuse{Base: base, CopiedBefore: copied.(time.Time)}
		}
	}
	if err := images.WriteFileIndexReusing(treeDir(state), stagingPath(state, fileIndexName), reuse); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepSBOM) Cleanup(multistep.StateBag) {}

// baseFileIndex reads the file index kept at path for the cached base tree at dir, writing it first
// when it is not there yet (a temporary file renamed into place, since builds share it).
func baseFileIndex(path, dir string) (map[string]string, error) {
	if idx, err := readIndex(path); err == nil {
		return idx, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := images.WriteFileIndex(dir, tmp); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return readIndex(path)
}

func readIndex(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return images.ReadFileIndex(zr) // reads to the end, so gzip checks its checksum
}
