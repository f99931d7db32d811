package tree

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Repository is a third-party apt repository an image installs packages from: not part of the base
// tree (which stays Debian's, shared by every role of the base), but added to the role's work tree
// (InstallFromRepositories), with its key in the fleet's repository, never fetched at build time.
type Repository struct {
	Name string
	// Block names the repository block for messages, such as `repository "hashicorp" (drover.hcl:12:5)`.
	Block         string
	URI           string // http or https URL of the directory holding dists/
	Suite         string
	Components    []string
	Architectures []string // empty for any
	Key           []byte   // OpenPGP public key(s), binary or armored
}

func (r Repository) source() Source {
	return Source{URL: strings.TrimRight(r.URI, "/"), Suite: r.Suite}
}

// serves reports whether the repository is used for arch.
func (r Repository) serves(arch string) bool {
	return len(r.Architectures) == 0 || slices.Contains(r.Architectures, arch)
}

// keySHA256 is the sha256 (hex) of the key's bytes.
func (r Repository) keySHA256() string {
	sum := sha256.Sum256(r.Key)
	return hex.EncodeToString(sum[:])
}

// Release fetches the repository's Release file and checks that its key signed it: InRelease
// (clearsigned) when the repository has one, else Release with its detached Release.gpg, as apt
// does. A repository without a Release file, without a signature, or signed by another key is an
// error naming the block; so is a key that is not an OpenPGP public key. It returns the verified
// text. Safe for concurrent use; it changes nothing.
func (r Repository) Release(ctx context.Context) (string, error) {
	text, err := r.release(ctx)
	if err != nil {
		return "", &RepositoryError{Block: r.Block, Err: err}
	}
	return text, nil
}

// RepositoryError is a third-party repository that cannot be used: unreachable, without a Release
// file for its suite, unsigned, or signed by another key than its block's.
type RepositoryError struct {
	Block string // the repository block, as Repository.Block
	Err   error
}

func (e *RepositoryError) Error() string { return fmt.Sprintf("tree: %s: %v", e.Block, e.Err) }
func (e *RepositoryError) Unwrap() error { return e.Err }

func (r Repository) release(ctx context.Context) (string, error) {
	keys, err := readKeyRing(r.Key)
	if err != nil {
		return "", fmt.Errorf("key sha256:%s is not an OpenPGP public key: %w", r.keySHA256()[:12], err)
	}
	src := r.source()
	dists := src.URL + "/dists/" + src.Suite + "/"
	inRelease, err := readMirrorFile(ctx, src.URL, "dists/"+src.Suite+"/InRelease")
	switch {
	case err == nil:
		block, _ := clearsign.Decode(inRelease)
		if block == nil {
			return "", fmt.Errorf("%sInRelease is not signed (no OpenPGP clearsigned message in it)", dists)
		}
		if _, err := block.VerifySignature(keys, nil); err != nil {
			return "", fmt.Errorf("%sInRelease is not signed by the repository's key (sha256:%s): %w", dists, r.keySHA256()[:12], err)
		}
		return string(block.Plaintext), nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading %sInRelease: %w", dists, err)
	}
	release, err := readMirrorFile(ctx, src.URL, "dists/"+src.Suite+"/Release")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s has no Release file (neither %sInRelease nor %sRelease): check uri and suite", src.URL, dists, dists)
	case err != nil:
		return "", fmt.Errorf("reading %sRelease: %w", dists, err)
	}
	sig, err := readMirrorFile(ctx, src.URL, "dists/"+src.Suite+"/Release.gpg")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("the repository is not signed: %sRelease has neither InRelease nor Release.gpg beside it, and apt refuses an unsigned repository", dists)
	case err != nil:
		return "", fmt.Errorf("reading %sRelease.gpg: %w", dists, err)
	}
	check := openpgp.CheckDetachedSignature
	if bytes.HasPrefix(bytes.TrimSpace(sig), []byte("-----BEGIN PGP")) {
		check = openpgp.CheckArmoredDetachedSignature
	}
	if _, err := check(keys, bytes.NewReader(release), bytes.NewReader(sig), nil); err != nil {
		return "", fmt.Errorf("%sRelease.gpg is not a signature of Release by the repository's key (sha256:%s): %w", dists, r.keySHA256()[:12], err)
	}
	return string(release), nil
}

func readKeyRing(key []byte) (openpgp.EntityList, error) {
	read := openpgp.ReadKeyRing
	if bytes.HasPrefix(bytes.TrimSpace(key), []byte("-----BEGIN PGP")) {
		read = openpgp.ReadArmoredKeyRing
	}
	keys, err := read(bytes.NewReader(key))
	if err == nil && len(keys) == 0 {
		err = errors.New("no key in it")
	}
	return keys, err
}

// RepositoryOffers says which version of each package the repositories offer for arch now: the
// newest any of them lists in the Packages index of each component (Architecture: all included),
// read through the index cache in Dir/indexes like Candidates and checked against the verified
// Release file's sha256. A component with no index for arch offers nothing. Errors name the block.
func (c *Cache) RepositoryOffers(ctx context.Context, arch string, repos []Repository) (map[string]string, error) {
	dir, err := c.indexDir()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range repos {
		if !r.serves(arch) {
			continue
		}
		release, err := r.Release(ctx)
		if err != nil {
			return nil, err
		}
		for _, comp := range r.Components {
			prefix := comp + "/binary-" + arch + "/Packages"
			if len(preferredIndexes(release, prefix)) == 0 {
				continue
			}
			idx, err := c.packagesIndex(ctx, dir, r.source(), release, prefix)
			if err != nil {
				return nil, fmt.Errorf("%w (%s)", err, r.Block)
			}
			for name, version := range idx {
				if have, ok := out[name]; !ok || CompareVersions(have, version) < 0 {
					out[name] = version
				}
			}
		}
	}
	return out, nil
}
