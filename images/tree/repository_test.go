package tree

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

func newSigner(t *testing.T) (*openpgp.Entity, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("repo", "", "repo@example.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		t.Fatal(err)
	}
	return e, pub.Bytes()
}

// signedRepository writes a repository of one suite "stable" with drover-hello 1.0 under a new
// directory, signed by signer as sign says ("inrelease", "detached" or "none"), and serves it.
func signedRepository(t *testing.T, signer *openpgp.Entity, sign string) string {
	t.Helper()
	root := t.TempDir()
	writeSuite(t, root, "stable", formGzip, "drover-hello 1.0", "nginx 9.9")
	dir := filepath.Join(root, "dists", "stable")
	release, err := os.ReadFile(filepath.Join(dir, "Release"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	switch sign {
	case "inrelease":
		w, err := clearsign.Encode(&out, signer.PrivateKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(release)
		w.Close()
		if err := os.WriteFile(filepath.Join(dir, "InRelease"), out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	case "detached":
		if err := openpgp.ArmoredDetachSign(&out, signer, bytes.NewReader(release), nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Release.gpg"), out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRepositoryOffers(t *testing.T) {
	signer, key := newSigner(t)
	_, otherKey := newSigner(t)
	ctx := context.Background()
	cache := &Cache{Dir: t.TempDir()}
	for _, sign := range []string{"inrelease", "detached"} {
		repo := Repository{Name: "local", Block: `repository "local" (drover.hcl:3:5)`, URI: signedRepository(t, signer, sign) + "/",
			Suite: "stable", Components: []string{"main"}, Key: key}
		got, err := cache.RepositoryOffers(ctx, "amd64", []Repository{repo})
		if err != nil || got["drover-hello"] != "1.0" || len(got) != 2 {
			t.Errorf("%s: offers %v, %v; want drover-hello 1.0 and nginx 9.9", sign, got, err)
		}
		if got, err := cache.RepositoryOffers(ctx, "arm64", []Repository{{Name: "x", Architectures: []string{"amd64"}}}); err != nil || len(got) != 0 {
			t.Errorf("%s: a repository for amd64 only offers %v, %v to arm64; want nothing, asked nothing", sign, got, err)
		}
	}

	// Candidates: the repository's version wins over the base archive's for what it offers.
	base := t.TempDir()
	writeSuite(t, base, "bookworm", formGzip, "nginx 1.22.1-9", "libc6 2.36-9")
	spec := BaseSpec{Suite: "bookworm", Mirror: "file://" + base, Arch: "amd64", NoUpdates: true}
	repo := Repository{Name: "local", Block: "b", URI: signedRepository(t, signer, "inrelease"), Suite: "stable", Components: []string{"main"}, Key: key}
	if got, err := cache.Candidates(ctx, spec, repo); err != nil || got["nginx"] != "9.9" || got["libc6"] != "2.36-9" || got["drover-hello"] != "1.0" {
		t.Errorf("candidates with a repository: %v, %v", got, err)
	}

	for name, c := range map[string]struct {
		uri, suite string
		key        []byte
		want       string
	}{
		"wrong key":       {signedRepository(t, signer, "inrelease"), "stable", otherKey, "InRelease is not signed by the repository's key"},
		"wrong key, gpg":  {signedRepository(t, signer, "detached"), "stable", otherKey, "Release.gpg is not a signature of Release by the repository's key"},
		"unsigned":        {signedRepository(t, signer, "none"), "stable", key, "the repository is not signed"},
		"no Release file": {signedRepository(t, signer, "inrelease"), "nosuch", key, "has no Release file"},
		"not a key":       {signedRepository(t, signer, "inrelease"), "stable", []byte("nonsense"), "is not an OpenPGP public key"},
	} {
		repo := Repository{Name: "local", Block: `repository "local" (drover.hcl:3:5)`, URI: c.uri, Suite: c.suite, Components: []string{"main"}, Key: c.key}
		_, err := cache.RepositoryOffers(ctx, "amd64", []Repository{repo})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), repo.Block) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", name, err, repo.Block, c.want)
		}
	}
}
