//go:build e2e && lab

package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"
)

// pkiWebName is the name web serves its certificate from Vault's PKI engine under (by SNI) in
// TestE2ESecrets, next to the KV one.
const pkiWebName = "pki.lab.example"

// servedChain is the chain addr serves for name, verified by the TLS handshake against roots and
// name.
func servedChain(addr, name string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: name})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates, nil
}

// checkPKIChain checks a chain web served from the PKI: the certificate and its issuing CA, for
// pkiWebName and the instance's own address as the guest sees it (10.0.2.15 under the lab's user
// network, put there by drover-boot for ${instance.address}), living ttl.
func checkPKIChain(t *testing.T, chain []*x509.Certificate, ttl time.Duration) {
	t.Helper()
	if len(chain) != 2 {
		t.Errorf("web serves %d certificates, want the certificate and the issuing CA", len(chain))
		return
	}
	leaf := chain[0]
	if !slices.Contains(leaf.DNSNames, pkiWebName) || !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP("10.0.2.15")) }) {
		t.Errorf("served certificate names: DNS %v, IP %v; want %s and the guest's 10.0.2.15", leaf.DNSNames, leaf.IPAddresses, pkiWebName)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < ttl || life > ttl+time.Minute { // Vault backdates NotBefore by 30s
		t.Errorf("served certificate lives %s, want the %s asked for (plus Vault's backdating)", life, ttl)
	}
}
