package main

import (
	"bufio"
	"context"
	"os"
	"strings"
	"time"

	"github.com/drover-dev/drover/plugins/dns"
	"github.com/drover-dev/drover/plugins/dns/verify"
)

// VerifyDNS waits until every authoritative server of the provider's zone serves want: the servers
// the provider names (dns.Verified: a block's nameservers list, an RFC 2136 primary), otherwise the
// zone's NS records looked up through this machine's resolver.
func (p *providers) VerifyDNS(ctx context.Context, prov dns.Provider, want dns.RecordSet, progress func(string, bool)) error {
	var servers []string
	if v, ok := prov.(dns.Verified); ok {
		servers = v.VerifyAt()
	}
	if len(servers) == 0 {
		var err error
		if servers, err = verify.Nameservers(ctx, prov.Zone(), systemResolver()); err != nil {
			return err
		}
	}
	return verify.WaitServed(ctx, servers, want, 50*time.Millisecond, func(server string, ok bool, _ []string) {
		if progress != nil {
			progress(server, ok)
		}
	})
}

// systemResolver is the first nameserver of /etc/resolv.conf, else 127.0.0.1.
func systemResolver() string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return "127.0.0.1"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			return fields[1]
		}
	}
	return "127.0.0.1"
}
