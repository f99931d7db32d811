package tree

import (
	"strings"
	"testing"
)

func TestRaspiTreeHooksAndKey(t *testing.T) {
	plain := BaseSpec{Suite: "bookworm", Arch: "arm64", Packages: []string{"linux-image-arm64"}}
	pi := BaseSpec{Suite: "bookworm", Arch: "arm64", Components: []string{"main", "non-free-firmware"},
		Packages: []string{"linux-image-arm64", RaspiFirmwarePackage}}
	if plain.normalized().isRaspi() || !pi.normalized().isRaspi() {
		t.Fatal("isRaspi does not follow the raspi-firmware package")
	}
	withoutHooks := pi
	withoutHooks.Packages = []string{"linux-image-arm64", "raspi-firmwar"}
	if pi.Key() == withoutHooks.Key() || !strings.Contains(raspiKey(), "mmc_block") {
		t.Error("the raspi recipe is not in the tree's key")
	}
	if strings.Contains(raspiDefaults, "'") {
		t.Error("raspiDefaults has a single quote, which ends the hook's quoting")
	}
	b := build{spec: pi.normalized(), root: "/tmp/root", debs: "/tmp/debs", debsOut: "/tmp/out"}
	args, err := b.args()
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, "\n")
	for _, want := range []string{
		"--dpkgopt=force-confold",
		"/etc/default/raspi-firmware",
		"dpkg-divert --local --rename --add /usr/sbin/update-initramfs",
		"update-initramfs -c -k all",
		`sed -i "/force-confold/d"`,
		"sdhci_iproc",
		"--components=main,non-free-firmware",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("mmdebstrap arguments lack %q", want)
		}
	}
	// The divert comes off before the one initramfs is made, and that after every package.
	if strings.Index(line, "--remove /usr/sbin/update-initramfs") > strings.Index(line, "update-initramfs -c -k all") {
		t.Error("the initramfs is made before update-initramfs is restored")
	}
	b.spec = plain.normalized()
	if args, _ := b.args(); strings.Contains(strings.Join(args, " "), "raspi") {
		t.Error("a tree without raspi-firmware gets the raspi hooks")
	}
}
