package tree

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRepositoryOffersOrLastWhenTheRepositoryIsDown: an identity is worked out from the last
// verified answer when the repository does not answer, never when it answers something wrong.
func TestRepositoryOffersOrLastWhenTheRepositoryIsDown(t *testing.T) {
	signer, key := newSigner(t)
	_, otherKey := newSigner(t)
	ctx := context.Background()
	upstream, err := url.Parse(signedRepository(t, signer, "inrelease"))
	if err != nil {
		t.Fatal(err)
	}
	var status atomic.Int32 // 0: forward to the repository; else answer with this status
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := status.Load(); s != 0 {
			http.Error(w, "down", int(s))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	repo := Repository{Name: "local", Block: `repository "local" (drover.hcl:3:5)`, URI: srv.URL,
		Suite: "stable", Components: []string{"main"}, Key: key}
	cache := &Cache{Dir: t.TempDir()}

	// Never answered on this cache: the error, not a guess.
	status.Store(http.StatusServiceUnavailable)
	if _, _, err := cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{repo}); err == nil || !strings.Contains(err.Error(), repo.Block) {
		t.Fatalf("first question to a repository that is down: %v; want an error naming the block", err)
	}

	status.Store(0)
	got, stale, err := cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{repo})
	if err != nil || got["drover-hello"] != "1.0" || len(stale) != 0 {
		t.Fatalf("repository up: %v, stale %v, %v; want drover-hello 1.0 and nothing stale", got, stale, err)
	}

	status.Store(http.StatusBadGateway)
	got, stale, err = cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{repo})
	if err != nil || got["drover-hello"] != "1.0" || len(stale) != 1 || stale[0].Block != repo.Block || stale[0].Checked.IsZero() {
		t.Fatalf("repository answering 502: %v, stale %+v, %v; want the last answer, reported stale", got, stale, err)
	}

	// Another key is another repository: nothing kept for it, so no answer.
	other := repo
	other.Key = otherKey
	if _, _, err := cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{other}); err == nil {
		t.Fatal("a repository with another key was answered from the first one's kept offers")
	}

	// A repository that answers with a signature of another key is refused, kept answer or not.
	status.Store(0)
	if _, _, err := cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{other}); err == nil || !strings.Contains(err.Error(), "not signed by the repository's key") {
		t.Fatalf("wrongly signed repository: %v; want the signature error", err)
	}

	srv.Close() // no server at all: connection refused
	got, stale, err = cache.RepositoryOffersOrLast(ctx, "amd64", []Repository{repo})
	if err != nil || got["nginx"] != "9.9" || len(stale) != 1 {
		t.Fatalf("repository unreachable: %v, stale %+v, %v; want the last answer, reported stale", got, stale, err)
	}
}
