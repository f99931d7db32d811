package tree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ansibleRemoteTmp is where Ansible puts its modules inside the tree; it
// is removed afterwards (and Hygiene empties /tmp anyway).
const ansibleRemoteTmp = "/tmp/.drover-ansible"

// Ansible applies playbook to the tree at root through Ansible's chroot
// connection (ansible-playbook -c chroot -i 'ROOT,'), with extraVars as
// extra variables. The tasks see the same mounts, host name and
// policy-rc.d as Run's commands. Ansible's modules run with the tree's
// Python, so the tree needs python3 (add it to the base packages). The
// playbook runs from its own directory, so relative roles and files
// resolve as usual.
func Ansible(ctx context.Context, root, playbook string, extraVars map[string]string, log io.Writer) (err error) {
	bin, err := exec.LookPath("ansible-playbook")
	if err != nil {
		return stepErr("ansible", fmt.Errorf("ansible-playbook not found (apt-get install ansible): %w", err))
	}
	pb, err := filepath.Abs(playbook)
	if err != nil {
		return stepErr("ansible", err)
	}
	if fi, err := os.Stat(pb); err != nil || !fi.Mode().IsRegular() {
		return stepErr("ansible", fmt.Errorf("playbook %s is not a readable file", playbook))
	}
	py, err := resolveIn(root, "/usr/bin/python3", true)
	if err != nil {
		return stepErr("ansible", err)
	}
	if _, err := os.Stat(py); err != nil {
		return stepErr("ansible", fmt.Errorf("the tree at %s has no /usr/bin/python3, which Ansible's modules need: add python3 to the base packages", root))
	}
	local, err := os.MkdirTemp("", "drover-ansible-")
	if err != nil {
		return stepErr("ansible", err)
	}
	defer os.RemoveAll(local)
	varsFile := filepath.Join(local, "extra-vars.json")
	if extraVars == nil {
		extraVars = map[string]string{} // JSON null is not a variables file
	}
	vars, err := json.Marshal(extraVars)
	if err == nil {
		err = os.WriteFile(varsFile, vars, 0o600)
	}
	if err != nil {
		return stepErr("ansible", fmt.Errorf("write extra vars: %w", err))
	}

	s, err := openChroot(root)
	if err != nil {
		return stepErr("ansible", err)
	}
	undoHome := removeIfCreated(filepath.Join(s.root, "root/.ansible"))
	defer func() {
		cerr := errors.Join(removeTree(filepath.Join(s.root, ansibleRemoteTmp)), undoHome(), s.close())
		if cerr != nil && err == nil {
			err = stepErr("ansible", fmt.Errorf("clean up after the playbook: %w", cerr))
		}
	}()
	// A trailing comma makes the inventory a host list, not a file name;
	// the chroot connection takes the host name as the chroot directory.
	args := []string{bin, "-c", "chroot", "-i", s.root + ",", "-e", "@" + varsFile, pb}
	f := run(ctx, command{
		args:    s.argv(args...),
		env:     ansibleEnv(local),
		dir:     filepath.Dir(pb),
		log:     log,
		isolate: true,
	})
	if f != nil {
		return f.asStepError("ansible", "ansible-playbook "+filepath.Base(pb))
	}
	return nil
}

// ansibleEnv is the chroot environment plus what ansible-playbook itself
// needs: the host's HOME and ANSIBLE_* settings, a private local temp
// dir, the tree's python3 without interpreter discovery, and plain output.
func ansibleEnv(localTmp string) []string {
	env := chrootEnv()
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ANSIBLE_") {
			env = append(env, kv)
		}
	}
	home, _ := os.UserHomeDir()
	return append(env,
		"HOME="+home, // later entries win in os/exec
		"ANSIBLE_LOCAL_TEMP="+localTmp,
		"ANSIBLE_REMOTE_TMP="+ansibleRemoteTmp,
		"ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=0",
		"ANSIBLE_HOST_KEY_CHECKING=0",
	)
}

// removeIfCreated returns a function that removes dir if it did not exist
// when removeIfCreated was called: Ansible's per-user state directory in
// the tree is an artifact of the build, not part of the image.
func removeIfCreated(dir string) func() error {
	if _, err := os.Lstat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return func() error { return nil }
	}
	return func() error { return removeTree(dir) }
}
