package tree

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// sshKeygenDropIn is where Hygiene makes ssh.service create host keys.
const sshKeygenDropIn = "/etc/systemd/system/ssh.service.d/drover-host-keys.conf"

// scrubSSHHostKeys removes the SSH host keys, so that machines made from
// one image do not share them, and makes sure sshd can still start.
func scrubSSHHostKeys(root string) error {
	if err := globInTree(root, "/etc/ssh", "ssh_host_*", false); err != nil {
		return err
	}
	unit, err := resolveIn(root, "/lib/systemd/system/ssh.service", true)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(unit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no openssh-server
	}
	if err != nil {
		return err
	}
	dropIn, err := inTree(root, sshKeygenDropIn)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dropIn); err == nil {
		return nil
	}
	if _, err := mkdirIn(root, filepath.Dir(sshKeygenDropIn)); err != nil {
		return err
	}
	return os.WriteFile(dropIn, []byte(sshKeygenUnit(data)), 0o644)
}

// sshKeygenUnit is a drop-in that runs ssh-keygen -A before the unit's own
// ExecStartPre lines (Debian's is "sshd -t", which fails without keys): a
// drop-in's ExecStartPre would otherwise run after them, so it resets the
// list and repeats them.
func sshKeygenUnit(unit []byte) string {
	var b strings.Builder
	b.WriteString("# drover: SSH host keys are removed from images so that every machine\n")
	b.WriteString("# has its own; create them before sshd starts.\n")
	b.WriteString("[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\n")
	sc := bufio.NewScanner(bytes.NewReader(unit))
	inService := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inService = line == "[Service]"
			continue
		}
		if inService && strings.HasPrefix(line, "ExecStartPre=") && line != "ExecStartPre=" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
