package etcd_test

import (
	"net/http"
	"testing"

	"github.com/drover-dev/drover/plugins/store/etcd/etcdtest"
)

// startEtcd starts a one-member etcd cluster on loopback (etcdtest.Start) and returns its client
// URL; it is stopped by its PID when the test ends.
func startEtcd(tb testing.TB) string {
	tb.Helper()
	return etcdtest.Start(tb)
}

// startEtcdWith starts etcd with its client URL of scheme (https needs TLS flags in extra) and
// asks its health through hc.
func startEtcdWith(tb testing.TB, scheme string, hc *http.Client, extra ...string) string {
	tb.Helper()
	return etcdtest.StartWith(tb, scheme, hc, extra...)
}
