//go:build e2e

package tree

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const testPlaybook = `- hosts: all
  gather_facts: false
  tasks:
    - name: a user of the image
      ansible.builtin.user:
        name: webops
        uid: 4567
        system: true
        create_home: false
    - name: a file owned by it
      ansible.builtin.copy:
        dest: /etc/drover-ansible.conf
        content: "greeting={{ greeting }}\n"
        owner: webops
        mode: "0640"
    - name: a unit enabled
      ansible.builtin.command: systemctl enable ssh.service
    - name: the host name inside is not the build host's
      ansible.builtin.command: hostname
      register: h
      failed_when: h.stdout != "localhost"
`

func TestE2EAnsible(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		t.Skip("ansible-playbook not installed (apt-get install ansible)")
	}
	root := copyOfSmallBase(t)
	dir := t.TempDir()
	pb := filepath.Join(dir, "site.yml")
	writeTestFile(t, pb, testPlaybook)
	ctx := testContext(t, 5*time.Minute)
	start := time.Now()
	if err := Ansible(ctx, root, pb, map[string]string{"greeting": "hello world"}, &testLog{t: t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("playbook ran in %s", time.Since(start).Round(time.Millisecond))
	b, err := os.ReadFile(filepath.Join(root, "etc/drover-ansible.conf"))
	if err != nil || string(b) != "greeting=hello world\n" {
		t.Fatalf("file %q, %v", b, err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/drover-ansible.conf")); fi.Sys().(*syscall.Stat_t).Uid != 4567 || fi.Mode().Perm() != 0o640 {
		t.Errorf("owner or mode wrong: %v", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/ssh.service")); err != nil {
		t.Errorf("ssh.service not enabled: %v", err)
	}
	for _, p := range []string{"tmp/.drover-ansible", "root/.ansible", "usr/sbin/policy-rc.d", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left after the playbook", p)
		}
	}
	assertNothingMounted(t, root)

	// A failing task: exit code and tail.
	writeTestFile(t, pb, "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.command: /bin/false\n")
	err = Ansible(ctx, root, pb, nil, &testLog{t: t})
	var se *StepError
	if !errors.As(err, &se) || se.Step != "ansible" || se.ExitCode != 2 || !strings.Contains(strings.Join(se.Tail, "\n"), "failed=1") {
		t.Fatalf("failing playbook: %v", err)
	}
	assertNothingMounted(t, root)
}
