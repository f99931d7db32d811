package tree

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// repositoryList is the sources list of a tree's third-party repositories, one line each with
// signed-by naming its own key, so the image's apt trusts each key for its repository only.
const repositoryList = "/etc/apt/sources.list.d/drover-repositories.list"

// repositoryAptOpts make apt read the third-party repositories alone: the base tree has its
// packages already, and reading Debian's indexes again would cost a download of megabytes per
// build and make the work tree depend on the archive's state after the base tree's.
var repositoryAptOpts = []string{"-o", "Dir::Etc::SourceList=" + repositoryList, "-o", "Dir::Etc::SourceParts=-"}

// InstallFromRepositories adds repos to the tree at root (their keys under /etc/apt/keyrings as
// drover-NAME.gpg or .asc, and repositoryList naming them with signed-by) and installs packages
// from them with the tree's own apt, chrooted, without recommends. apt verifies each repository's
// Release file with its key and refuses an unsigned one. apt reads the repositories alone first
// (the base tree holds the role's Debian packages already); only when a package needs a Debian
// package the tree lacks does it read the base's archives too and install that from them. With no
// repositories it does nothing. On failure the tree is left half-changed:
// callers throw the work tree away. Errors are StepErrors of step "repositories".
func InstallFromRepositories(ctx context.Context, root string, repos []Repository, packages []string, log io.Writer) error {
	if len(repos) == 0 {
		return nil
	}
	return stepErr("repositories", installFromRepositories(ctx, root, repos, packages, log))
}

func installFromRepositories(ctx context.Context, root string, repos []Repository, packages []string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	keys, err := mkdirIn(root, imageKeyringDir)
	if err != nil {
		return err
	}
	var list strings.Builder
	list.WriteString("# Written by drover from the fleet's repository blocks.\n")
	for _, r := range repos {
		name := "drover-" + r.Name + keyringExt(r.Key)
		if err := os.WriteFile(filepath.Join(keys, name), r.Key, 0o644); err != nil {
			return fmt.Errorf("%s: write its key: %w", r.Block, err)
		}
		if err := os.Chmod(filepath.Join(keys, name), 0o644); err != nil {
			return fmt.Errorf("%s: write its key: %w", r.Block, err)
		}
		opts := "signed-by=" + imageKeyringDir + "/" + name
		if len(r.Architectures) > 0 {
			opts += " arch=" + strings.Join(r.Architectures, ",")
		}
		fmt.Fprintf(&list, "# %s\ndeb [%s] %s %s %s\n", r.Block, opts, r.source().URL, r.Suite, strings.Join(r.Components, " "))
	}
	dir, err := mkdirIn(root, filepath.Dir(repositoryList))
	if err != nil {
		return err
	}
	listPath := filepath.Join(dir, filepath.Base(repositoryList))
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", repositoryList, err)
	}
	if err := os.Chmod(listPath, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", repositoryList, err)
	}
	if len(packages) == 0 {
		return nil
	}
	s, err := openChroot(root)
	if err != nil {
		return err
	}
	defer s.close()
	names := make([]string, len(repos))
	for i, r := range repos {
		names[i] = r.Block
	}
	from := strings.Join(names, ", ")
	aptGet := func(opts []string, args ...string) *commandFailure {
		argv := append(append([]string{"apt-get"}, opts...), args...)
		fmt.Fprintf(log, "+ %s\n", strings.Join(argv, " "))
		return run(ctx, command{args: s.argv(append([]string{"chroot", s.root}, argv...)...), env: chrootEnv(), log: log, isolate: true})
	}
	install := append([]string{"install", "-y", "--no-install-recommends"}, packages...)
	if f := aptGet(repositoryAptOpts, "update", "--error-on=any"); f != nil {
		return f.asStepError("repositories", "apt-get update of "+from)
	}
	f := aptGet(repositoryAptOpts, install...)
	if f != nil && missingDependencies(f.tail) {
		// Debian packages the repositories' packages need and the base tree lacks: read the
		// base's archives too (the tree's own sources.list), which costs their indexes' download.
		fmt.Fprintf(log, "repositories: %s need packages the base tree lacks; installing them from the base's archives too\n", strings.Join(packages, " "))
		if f := aptGet(nil, "update", "--error-on=any"); f != nil {
			return f.asStepError("repositories", "apt-get update of the base's archives and "+from)
		}
		f = aptGet(nil, install...)
	}
	if f != nil {
		se := f.asStepError("repositories", "apt-get install "+strings.Join(packages, " ")+" from "+from)
		if missingDependencies(f.tail) {
			se.Err = fmt.Errorf("%w (a dependency is neither in the repositories nor in the base's archives)", se.Err)
		}
		return se
	}
	return s.close()
}

// missingDependencies says whether apt's output is a failure to install for want of a package.
func missingDependencies(tail []string) bool {
	for _, l := range tail {
		if strings.Contains(l, "is not installable") || strings.Contains(l, "unmet dependencies") {
			return true
		}
	}
	return false
}
