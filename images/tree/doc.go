// Package tree does everything to a Debian root filesystem tree before it
// becomes a disk: it bootstraps and caches base trees with mmdebstrap,
// copies them, customizes them without booting (files, shell commands in a
// chroot, Ansible through its chroot connection), scrubs what must not ship
// in an image (machine ids, SSH host keys, apt lists, logs, shell history,
// the build host's names) and lists the installed packages for the SBOM.
//
// Every function that fails returns a *StepError naming the pipeline step
// ("bootstrap", "copy", "files", "run", "ansible", "hygiene", "sbom"), so a
// failed build says where it broke; for a failed command the error also
// carries the exit code and the last lines of its output.
//
// Commands inside a tree run in a private mount and UTS namespace: the
// /proc, /sys, /dev and /run mounts they need exist only in that namespace,
// so they are gone when the command ends, however it ends (failure,
// cancellation, even SIGKILL of this process), and the build host never
// sees them. The namespace's host name is "localhost", so package scripts
// that record the host name do not record the build host's.
//
// Everything here needs root: mmdebstrap --mode=root, chroot, mount and
// chown of files to the tree's users.
package tree
