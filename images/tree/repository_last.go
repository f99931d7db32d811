package tree

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// LastOffers is what RepositoryOffersOrLast used in place of a repository it could not reach.
type LastOffers struct {
	Block   string    // the repository block, as Repository.Block
	Checked time.Time // when that answer was verified
	Err     error     // why the repository was not asked again
}

// RepositoryOffersOrLast is RepositoryOffers for working out an identity, which must not depend
// on a third-party server being up: a repository that cannot be reached (a network error or an
// HTTP 5xx answer) is replaced by its last verified answer for arch kept in the cache, and
// reported in the second result. Every other failure (no Release file, no signature, another
// key) is an error as in RepositoryOffers, and so is an unreachable repository never answered
// on this cache. Each verified answer is kept for the next time. Safe for concurrent use: the
// kept answers are written to a temporary file and renamed.
func (c *Cache) RepositoryOffersOrLast(ctx context.Context, arch string, repos []Repository) (map[string]string, []LastOffers, error) {
	out := map[string]string{}
	var stale []LastOffers
	for _, r := range repos {
		if !r.serves(arch) {
			continue
		}
		offer, err := c.RepositoryOffers(ctx, arch, []Repository{r})
		path, perr := c.lastOffersPath(r, arch)
		if perr != nil {
			return nil, nil, perr
		}
		switch {
		case err == nil:
			if werr := writeLastOffers(path, offer); werr != nil {
				return nil, nil, fmt.Errorf("tree: %s: keeping its offers: %w", r.Block, werr)
			}
		case unreachable(err):
			kept, checked, rerr := readLastOffers(path)
			if rerr != nil {
				return nil, nil, err
			}
			offer = kept
			stale = append(stale, LastOffers{Block: r.Block, Checked: checked, Err: err})
		default:
			return nil, nil, err
		}
		for name, version := range offer {
			if have, ok := out[name]; !ok || CompareVersions(have, version) < 0 {
				out[name] = version
			}
		}
	}
	return out, stale, nil
}

// lastOffersPath names a repository's kept answer by everything that makes it that repository:
// its URI, suite, components and key.
func (c *Cache) lastOffersPath(r Repository, arch string) (string, error) {
	dir, err := c.indexDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%q\x00%s\x00%s", r.URI, r.Suite, r.Components, r.keySHA256(), arch))
	return filepath.Join(dir, "offers-"+hex.EncodeToString(sum[:16])+".json"), nil
}

type lastOffersFile struct {
	Checked time.Time         `json:"checked"`
	Offers  map[string]string `json:"offers"`
}

func writeLastOffers(path string, offers map[string]string) error {
	b, err := json.Marshal(lastOffersFile{Checked: time.Now().UTC(), Offers: offers})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readLastOffers(path string) (map[string]string, time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var f lastOffersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return f.Offers, f.Checked, nil
}

var serverError = regexp.MustCompile(`: HTTP 5\d\d$`)

// unreachable tells a repository that did not answer (no connection, a timeout, a server error)
// from one that answered something drover refuses.
func unreachable(err error) bool {
	var urlErr *url.Error
	var netErr net.Error
	if errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if serverError.MatchString(e.Error()) {
			return true
		}
	}
	return false
}
