package rootfs

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The units and files every image gets. drover-boot runs before the role's services (it is ordered
// before multi-user.target, and later issues make role services require it); the first-boot unit
// creates what hygiene removed: SSH host keys (systemd itself fills the empty /etc/machine-id).
const (
	agentPath = "/usr/local/bin/drover-boot"

	// drover-boot tells systemd it is ready (sd_notify) once the secrets are written, then keeps
	// running to renew its Vault token; without secrets it is ready and exits at once. It is never
	// restarted: its credential is single-use.
	droverBootUnit = `[Unit]
Description=drover: fetch this instance's secrets and report its boot
After=local-fs.target network.target
Before=multi-user.target

[Service]
Type=notify
NotifyAccess=main
RemainAfterExit=yes
ExecStart=/usr/local/bin/drover-boot
TimeoutStartSec=3min
TimeoutStopSec=20s
Restart=no
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

	firstBootUnit = `[Unit]
Description=drover: create this instance's SSH host keys
DefaultDependencies=no
After=local-fs.target
Before=ssh.service multi-user.target
ConditionPathExists=/usr/bin/ssh-keygen
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`

	// systemd-resolved resolves for the instance without its stub listener on 127.0.0.53:53, so a role
	// that serves DNS (Knot, NSD, BIND on 0.0.0.0:53) can bind the port; /etc/resolv.conf then names
	// the DHCP-provided servers directly.
	resolvedDropIn = `[Resolve]
DNSStubListener=no
`
	resolvConfLink = "ln -sfn ../run/systemd/resolve/resolv.conf /etc/resolv.conf"

	// timesyncdDropIn puts EC2's hypervisor clock (the Amazon Time Sync Service, answering on the
	// link-local 169.254.169.123 of every Nitro instance) first and Debian's pool after it: timesyncd
	// moves to the next server when one does not answer, so off EC2 (the lab, other clouds) the pool
	// serves, and servers a network's DHCP names still come first.
	timesyncdDropIn = `[Time]
NTP=169.254.169.123 0.debian.pool.ntp.org 1.debian.pool.ntp.org 2.debian.pool.ntp.org 3.debian.pool.ntp.org
`

	// piWatchdogPath and piWatchdog have systemd pet the Pi's hardware watchdog (bcm2835_wdt; the
	// lab's emulated Pi has an i6300esb), so a board that hangs, a trial boot of a bad update among
	// others, is reset and comes back on its committed slot by itself. 15 s is the longest the Pi's
	// watchdog counts (the driver refuses more); systemd pets it every half of that. The reboot
	// watchdog bounds a shutdown that hangs.
	piWatchdogPath = "/etc/systemd/system.conf.d/50-drover-watchdog.conf"
	piWatchdog     = `# drover: a hung Pi is reset by its hardware watchdog and boots its committed slot.
[Manager]
RuntimeWatchdogSec=15s
RebootWatchdogSec=2min
`

	// piWatchdogModulesPath and piWatchdogModules load the watchdog's driver first thing in the boot
	// (systemd-modules-load runs before sysinit.target) rather than when udev gets to the device,
	// which under emulation was 162 s into a boot: systemd opens the watchdog as soon as it exists,
	// so a trial that hangs in its early boot is reset too. bcm2835_wdt is the Pi's; i6300esb is the
	// lab's emulated Pi's (a PCI driver: on a Pi it finds no device and does nothing). A hang before
	// PID 1 starts (in the kernel or the initramfs) is not covered; a panic there reboots through
	// panic=10 on the command line.
	piWatchdogModulesPath = "/etc/modules-load.d/drover-watchdog.conf"
	piWatchdogModules     = `# drover: the hardware watchdog's driver, loaded early so systemd arms it at once.
bcm2835_wdt
i6300esb
`

	// PiDataMount is where a Pi's card mounts its data partition (partition 7, label "data"), which
	// every slot shares and no update writes.
	PiDataMount = "/data"

	// piFirstBootUnit gives a Pi the same SSH host keys in both slots and across updates: a slot's
	// root is written fresh by each update, so its keys are kept on the data partition, made at the
	// very first boot and copied into /etc/ssh at every boot after; drover pins them.
	piFirstBootUnit = `[Unit]
Description=drover: this Pi's SSH host keys, kept on the card's data partition across updates
DefaultDependencies=no
Wants=data.mount
After=local-fs.target data.mount
Before=ssh.service multi-user.target
ConditionPathExists=/usr/bin/ssh-keygen

[Service]
Type=oneshot
# Without /data (its partition did not mount) the keys are this boot's own: sshd still starts,
# and drover, which pinned the kept ones, refuses the new key rather than trust it.
ExecStart=/bin/sh -ec 'if ! mountpoint -q /data; then ssh-keygen -A; exit 0; fi; mkdir -p -m 0700 /data/ssh; if ls /data/ssh/ssh_host_*_key >/dev/null 2>&1; then rm -f /etc/ssh/ssh_host_*; cp -p /data/ssh/ssh_host_* /etc/ssh/; else ssh-keygen -A; cp -p /etc/ssh/ssh_host_* /data/ssh/; fi'

[Install]
WantedBy=multi-user.target
`

	// Every NIC gets DHCP: the lab's qemu user network and the clouds' networks all offer it.
	dhcpNetwork = `[Match]
Name=en* eth*

[Network]
DHCP=yes
`
)

// imageInfo is /etc/drover/image.json: who this image is, for drover-boot and for people.
type imageInfo struct {
	Role     string   `json:"role"`
	Identity string   `json:"identity"`
	Secrets  []string `json:"secrets"`
	// Certificates are the Vault issue paths the image's certificates come from.
	Certificates []string `json:"certificates,omitempty"`
}

func imageInfoJSON(role, identity string, secrets, certificates []string) string {
	if secrets == nil {
		secrets = []string{}
	}
	b, _ := json.MarshalIndent(imageInfo{Role: role, Identity: identity, Secrets: secrets, Certificates: certificates}, "", "  ")
	return string(b) + "\n"
}

func fstab(rootUUID string) string {
	return fmt.Sprintf("# drover: the root filesystem, found by UUID\nUUID=%s / ext4 errors=remount-ro 0 1\n", rootUUID)
}

// cardFstab is a Pi card's fstab: the slot's root, found by the kernel's root=PARTUUID= (both slots
// hold the same root filesystem, so its UUID would not tell them apart), and the data partition.
func cardFstab() string {
	return "# drover: the root is the slot's partition the kernel booted (root=PARTUUID= in cmdline.txt)\n" +
		"/dev/root / ext4 errors=remount-ro 0 1\n" +
		"# the card's data partition, kept across updates and shared by both slots\n" +
		"LABEL=data " + PiDataMount + " ext4 defaults,nofail 0 2\n"
}

// uuidFromIdentity derives the root filesystem UUID from the image identity, so equal inputs give
// equal disks, and different images never share a UUID.
func uuidFromIdentity(identity string) string {
	h := strings.TrimPrefix(identity, "sha256:")
	if len(h) < 32 {
		h = (h + strings.Repeat("0", 32))[:32]
	}
	b := []byte(h[:32])
	b[12] = '4' // version 4 layout, as tools expect of a random UUID
	b[16] = "89ab"[hexValue(b[16])&3]
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[0:8], b[8:12], b[12:16], b[16:20], b[20:32])
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return 0
}
