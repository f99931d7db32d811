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
// Release file with its key and refuses an unsigned one. The packages' dependencies that the
// repositories do not have must be in the tree already (the base tree holds the role's Debian
// packages). With no repositories it does nothing. On failure the tree is left half-changed:
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
	steps := []struct {
		args []string
		what string
	}{
		{append(append([]string{"apt-get"}, repositoryAptOpts...), "update", "--error-on=any"), "apt-get update of " + strings.Join(names, ", ")},
		{append(append([]string{"apt-get"}, repositoryAptOpts...), append([]string{"install", "-y", "--no-install-recommends"}, packages...)...),
			"apt-get install " + strings.Join(packages, " ") + " from " + strings.Join(names, ", ")},
	}
	for _, st := range steps {
		fmt.Fprintf(log, "+ %s\n", strings.Join(st.args, " "))
		f := run(ctx, command{args: s.argv(append([]string{"chroot", s.root}, st.args...)...), env: chrootEnv(), log: log, isolate: true})
		if f == nil {
			continue
		}
		se := f.asStepError("repositories", st.what)
		for _, l := range f.tail {
			if strings.Contains(l, "is not installable") || strings.Contains(l, "unmet dependencies") {
				se.Err = fmt.Errorf("%w (a package from a repository gets the Debian packages it depends on from the base tree: add them to the image's packages)", se.Err)
				break
			}
		}
		return se
	}
	return s.close()
}
