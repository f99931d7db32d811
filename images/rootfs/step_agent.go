package rootfs

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/images/tree"
)

// stepAgent bakes drover-boot, its unit, the first-boot unit, DHCP networking, the NTP servers,
// /etc/fstab and /etc/drover/image.json into the tree, and enables the units; a Pi's card also gets
// its hardware watchdog enabled (piWatchdog) and its driver loaded early (piWatchdogModules).
type stepAgent struct{}

func (s *stepAgent) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if _, err := os.Stat(req.Agent); err != nil {
		return fail(state, fmt.Errorf("the drover-boot agent %s: %w (run go tool task build, or set DROVER_BOOT_DIR)", req.Agent, err))
	}
	text := func(s string) *string { return &s }
	files := []tree.File{
		{Dest: agentPath, Source: req.Agent, Mode: 0o755, Owner: "root:root"},
		{Dest: "/etc/systemd/system/drover-boot.service", Content: text(droverBootUnit), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/systemd/system/drover-firstboot.service", Content: text(firstBootUnit), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/systemd/network/80-drover-dhcp.network", Content: text(dhcpNetwork), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/systemd/resolved.conf.d/drover.conf", Content: text(resolvedDropIn), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/systemd/timesyncd.conf.d/drover.conf", Content: text(timesyncdDropIn), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/fstab", Content: text(fstab(uuidFromIdentity(req.Identity()))), Mode: 0o644, Owner: "root:root"},
		{Dest: "/etc/drover/image.json", Content: text(imageInfoJSON(req.Role, req.Identity(), req.Inputs.Secrets, req.Inputs.Certificates)), Mode: 0o644, Owner: "root:root"},
	}
	if req.Card {
		files = append(files,
			tree.File{Dest: piWatchdogPath, Content: text(piWatchdog), Mode: 0o644, Owner: "root:root"},
			tree.File{Dest: piWatchdogModulesPath, Content: text(piWatchdogModules), Mode: 0o644, Owner: "root:root"})
		for i := range files {
			switch files[i].Dest {
			case "/etc/systemd/system/drover-firstboot.service":
				files[i].Content = text(piFirstBootUnit)
			case "/etc/fstab":
				files[i].Content = text(cardFstab())
			}
		}
	}
	if err := tree.InstallFiles(treeDir(state), files); err != nil {
		return fail(state, err)
	}
	enable := []string{"systemctl enable systemd-networkd.service drover-boot.service drover-firstboot.service", resolvConfLink}
	if err := tree.Run(ctx, treeDir(state), enable, logWriter(state)); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepAgent) Cleanup(multistep.StateBag) {}
