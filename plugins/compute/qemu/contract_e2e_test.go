//go:build e2e

package qemu_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dev/drover/internal/contract"
	"github.com/drover-dev/drover/plugins/compute"
	"github.com/drover-dev/drover/plugins/compute/computetest"
	"github.com/drover-dev/drover/plugins/compute/qemu"
	"github.com/drover-dev/drover/plugins/config"
)

// TestE2EContract runs the compute contract suite against real qemu processes.
// The image is a blank disk under SeaBIOS: the suite needs VMs, not guests,
// and a firmware that finds nothing to boot costs next to no CPU.
func TestE2EContract(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "blank.raw")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	configure := func(c any) {
		cfg := c.(*qemu.Config)
		cfg.Firmware, cfg.Memory, cfg.Accel = "bios", 128, "tcg"
		cfg.Network = "127.0.11.0/24"
	}
	computetest.Run(t, func(t *testing.T) compute.Provider {
		dir := t.TempDir()
		killAll(t, dir)
		// Opened as drover opens a qemu block: through the type's factory.
		return contract.FromFactory(qemu.Factory(), configure, config.Env{Lookup: config.OS(), StateDir: dir})(t)
	}, computetest.Options{
		Image:       compute.Image{Identity: "blank", Path: blank},
		Ports:       []int{8080, 8443},
		Timeout:     2 * time.Minute,
		Concurrency: 4,
	})
}
