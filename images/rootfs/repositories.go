package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/drover-dev/drover/fleet"
	"github.com/drover-dev/drover/images"
	"github.com/drover-dev/drover/images/tree"
)

// offersFunc says which package versions repositories offer for an architecture
// (tree.Cache.RepositoryOffers, through the Identifier's memo).
type offersFunc func(ctx context.Context, cache *tree.Cache, arch string, repos []tree.Repository) (map[string]string, error)

// addRepositories gives req the role's third-party repositories (its base's and its image's), with
// the key bytes the identity covers, and moves the packages they offer out of the base tree's
// package set into req.RepositoryPackages: those are installed in the work tree from the
// repositories (stepRepositories), and the base tree stays the one every role of the base shares.
// It asks each repository for its verified Release file and Packages indexes, so an unreachable,
// unsigned or wrongly signed repository fails here, naming its block. base and role are the
// fleet's; changes only req.
func addRepositories(ctx context.Context, req *Request, base fleet.Base, role *fleet.Role, offers offersFunc) error {
	repos := images.RoleRepositories(base, role)
	if len(repos) == 0 {
		return nil
	}
	req.Inputs.Repositories = nil
	for _, r := range repos {
		// The bytes given to the builder are the ones the identity covers, even if the file
		// changes between the two reads.
		key, err := os.ReadFile(r.Key)
		if err != nil {
			return fmt.Errorf("rootfs: role %q, %s, key: %w", role.Name, r, err)
		}
		sum := sha256.Sum256(key)
		req.Repositories = append(req.Repositories, tree.Repository{Name: r.Name, Block: r.String(), URI: r.URI, Suite: r.Suite,
			Components: r.Components, Architectures: r.Architectures, Key: key})
		req.Inputs.Repositories = append(req.Inputs.Repositories, images.RepositoryInput{Name: r.Name, URI: r.URI, Suite: r.Suite,
			Components: r.Components, Architectures: r.Architectures, Key: hex.EncodeToString(sum[:])})
	}
	offered, err := offers(ctx, req.Cache, base.Arch, req.Repositories)
	if err != nil {
		return fmt.Errorf("rootfs: role %q: %w", role.Name, err)
	}
	asked := map[string]bool{}
	for _, p := range append(append([]string{}, base.Packages...), role.Image.Packages...) {
		asked[p] = true
	}
	var kept []string
	for _, p := range req.Base.Packages {
		if _, ok := offered[packageName(p)]; ok && asked[p] {
			if !contains(req.RepositoryPackages, p) {
				req.RepositoryPackages = append(req.RepositoryPackages, p)
			}
			continue
		}
		kept = append(kept, p)
	}
	req.Base.Packages = kept
	return nil
}

// packageName is a package of a list without its :arch, =version or /release.
func packageName(p string) string {
	if i := strings.IndexAny(p, ":=/"); i >= 0 {
		return p[:i]
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// repositoryOffers is the Identifier's memo of RepositoryOffers: one question per repository set
// and architecture for all the roles of a build.
func (id *Identifier) repositoryOffers(ctx context.Context, cache *tree.Cache, arch string, repos []tree.Repository) (map[string]string, error) {
	key := "repositories " + arch + " " + repositoriesKey(repos)
	id.mu.Lock()
	defer id.mu.Unlock()
	if offer, ok := id.offers[key]; ok {
		return offer, nil
	}
	// An identity must not depend on a third-party server being up: a repository that does not
	// answer is taken as it last answered here (which packages come from it), and said so. The
	// build itself asks it again (apt) and fails if it still does not answer.
	offer, stale, err := cache.RepositoryOffersOrLast(ctx, arch, repos)
	if err != nil {
		return nil, err
	}
	for _, s := range stale {
		id.logger().Warn("a third-party repository did not answer; using its packages as last verified",
			"repository", s.Block, "verified", s.Checked.Format(time.RFC3339), "error", s.Err)
	}
	id.offers[key] = offer
	return offer, nil
}

func (id *Identifier) logger() *slog.Logger {
	if id.opts.Logger != nil {
		return id.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// repositoriesKey tells repository sets apart: every field, the key by its sha256.
func repositoriesKey(repos []tree.Repository) string {
	var b strings.Builder
	for _, r := range repos {
		sum := sha256.Sum256(r.Key)
		fmt.Fprintf(&b, "%s %s %s %v %v %x;", r.Name, r.URI, r.Suite, r.Components, r.Architectures, sum)
	}
	return b.String()
}

// stepRepositories installs the packages that come from the role's third-party repositories into
// the work tree (tree.InstallFromRepositories). It changes only the work tree, which the work tree
// step removes: nothing to clean up here.
type stepRepositories struct{}

func (s *stepRepositories) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	req := request(state)
	if err := tree.InstallFromRepositories(ctx, treeDir(state), req.Repositories, req.RepositoryPackages, logWriter(state)); err != nil {
		return fail(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepRepositories) Cleanup(multistep.StateBag) {}
