package rootfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/disk"
	"github.com/drover-dev/drover/images/tree"
)

// stepManifest writes manifest.json and moves the staging directory into the catalog in one rename:
// the image appears complete or not at all. The work tree is removed first; it is never cataloged.
type stepManifest struct{}

func (s *stepManifest) Run(_ context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	d := state.Get(keyDisk).(disk.Result)
	treeBytes := duBytes(treeDir(state))
	if o, ok := state.GetOk(keyOverlay); ok {
		if err := o.(*tree.Overlay).Remove(); err != nil {
			return fail(state, fmt.Errorf("removing the work tree: %w", err))
		}
	} else if err := os.RemoveAll(treeDir(state)); err != nil {
		return fail(state, fmt.Errorf("removing the work tree: %w", err))
	}
	m := &images.Manifest{
		Identity:       req.Identity(),
		Role:           req.Role,
		Arch:           req.Base.Arch,
		Created:        time.Now().UTC(),
		DroverVersion:  req.Inputs.DroverVersion,
		Inputs:         req.Inputs,
		ArtifactSHA256: d.SHA256,
		Packages:       state.Get(keyPackages).([]images.Package),
		Refresh:        req.Refresh,
		BaseTreeEntry:  filepath.Base(state.Get(keyBase).(string)),
		Sizes:          images.Sizes{TreeBytes: treeBytes, RootBytes: d.RootSize, ESPBytes: d.ESPSize, DiskBytes: d.Size},
		Kernel:         d.KernelVersion,
		Cmdline:        d.Cmdline,
		Steps:          append([]images.StepTime{}, *state.Get(keyTimings).(*[]images.StepTime)...),
		BuildLog:       "build.log",
		Files:          fileIndexName,
	}
	if st, ok := state.GetOk(keyScan); ok {
		stats := st.(images.ScanStats)
		m.Scan = &stats
	}
	if c, ok := state.GetOk(keyCard); ok {
		m.Card = cardManifest(c.(disk.CardResult))
	}
	for _, a := range []struct{ format, name string }{{"raw", rawName}, {"qcow2", qcow2Name}, {images.CardFormat, cardName}} {
		path := stagingPath(state, a.name)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		sum := d.SHA256
		if a.format == "qcow2" {
			if sum, err = images.FileSHA256(path); err != nil {
				return fail(state, err)
			}
		}
		m.Artifacts = append(m.Artifacts, images.Artifact{Format: a.format, File: a.name, Size: allocated(fi), Length: fi.Size(), SHA256: sum})
	}
	staging := state.Get(keyStaging).(*images.Staging)
	if err := staging.Commit(m); err != nil {
		return fail(state, err)
	}
	state.Put(keyResult, &Result{Manifest: m})
	return multistep.ActionContinue
}

func (s *stepManifest) Cleanup(multistep.StateBag) {}

// cardManifest is what the manifest records of an SD card.
func cardManifest(c disk.CardResult) *images.Card {
	m := &images.Card{DiskID: c.DiskID, DataPartition: disk.CardDataPartition, Bundle: bundleName}
	for _, s := range c.Slots {
		m.Slots = append(m.Slots, images.CardSlot{Name: s.Name, BootPartition: s.BootPartition, RootPartition: s.RootPartition, RootPARTUUID: s.RootPARTUUID})
	}
	if c.Bundle != nil {
		for _, p := range c.Bundle.Parts {
			m.BundleParts = append(m.BundleParts, images.BundlePart{Role: p.Role, Slot: p.Slot, File: p.File, Size: p.Size, SHA256: p.SHA256})
		}
	}
	return m
}

// allocated is the space a (sparse) file really uses.
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}

// duBytes is the apparent size of a tree's regular files.
func duBytes(root string) int64 {
	var n int64
	_ = filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
