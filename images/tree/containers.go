package tree

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// ContainerStorage is where a tree's container store is, and the storage driver it is written
// with. vfs keeps every layer as a plain directory: the overlay driver would need an overlay mount
// inside the work tree (itself an overlay) at build time, and stores whiteouts as device nodes.
const (
	ContainerGraphRoot = "/var/lib/containers/storage"
	ContainerRunRoot   = "/run/containers/storage"
	ContainerDriver    = "vfs"
)

// Container is one container image to copy into a tree's container store.
type Container struct {
	Name  string // the container block's name, for errors
	Where string // the block's file:line:col, for errors
	// Ref is the image pinned by its digest, REGISTRY/REPOSITORY@sha256:HEX: it is pulled by this
	// reference (the registry checks the digest, and so does the copy) and stored under it.
	Ref string
	// Insecure lets the copy reach the registry over plain HTTP or unverified TLS.
	Insecure bool
}

// CopyContainer copies c from its registry into the container store of the tree at root, with
// skopeo, as the engine in the tree will read it (ContainerDriver at ContainerGraphRoot). scratch
// is a directory of the build's own for the store's run root and the signature policy; it is left
// for the caller to remove. It is idempotent: an image already in the store is not copied again.
// A failed copy leaves the layers it wrote in the tree, which the build throws away with the tree.
func CopyContainer(ctx context.Context, root, scratch string, c Container, log io.Writer) error {
	if _, err := exec.LookPath("skopeo"); err != nil {
		return fmt.Errorf("tree: container %q (%s): skopeo not found (apt-get install skopeo): %w", c.Name, c.Where, err)
	}
	graph, err := mkdirIn(root, ContainerGraphRoot)
	if err != nil {
		return fmt.Errorf("tree: container %q (%s): %w", c.Name, c.Where, err)
	}
	runRoot := filepath.Join(scratch, "containers-run")
	if err := os.MkdirAll(runRoot, 0o700); err != nil {
		return fmt.Errorf("tree: container %q (%s): %w", c.Name, c.Where, err)
	}
	// The digest pins the bytes; signatures are not what the build checks, so the policy accepts
	// any (the build host's own policy.json may not exist, or may ask for other things).
	policy := filepath.Join(scratch, "containers-policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`+"\n"), 0o600); err != nil {
		return fmt.Errorf("tree: container %q (%s): %w", c.Name, c.Where, err)
	}
	args := []string{"skopeo", "--policy", policy, "copy", "--retry-times", "2"}
	if c.Insecure {
		args = append(args, "--src-tls-verify=false")
	}
	dest := fmt.Sprintf("containers-storage:[%s@%s+%s]%s", ContainerDriver, graph, runRoot, c.Ref)
	args = append(args, "docker://"+c.Ref, dest)
	env := append(chrootEnv(), "TMPDIR="+scratch, "REGISTRY_AUTH_FILE="+filepath.Join(scratch, "containers-auth.json"))
	if f := run(ctx, command{args: args, env: env, log: log}); f != nil {
		return fmt.Errorf("tree: container %q (%s): %w", c.Name, c.Where, f.asStepError("containers", "skopeo copy docker://"+c.Ref))
	}
	return nil
}

// EnableUnit makes unit start at boot as systemctl enable would for WantedBy=target: a link in
// /etc/systemd/system/TARGET.wants to /etc/systemd/system/UNIT. It is idempotent.
func EnableUnit(root, unit, target string) error {
	dir, err := mkdirIn(root, "/etc/systemd/system/"+target+".wants")
	if err != nil {
		return fmt.Errorf("tree: enable %s: %w", unit, err)
	}
	link := filepath.Join(dir, unit)
	want := "/etc/systemd/system/" + unit
	if got, err := os.Readlink(link); err == nil && got == want {
		return nil
	}
	_ = os.Remove(link)
	if err := os.Symlink(want, link); err != nil {
		return fmt.Errorf("tree: enable %s: %w", unit, err)
	}
	return nil
}
