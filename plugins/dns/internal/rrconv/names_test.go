package rrconv

import "testing"

// TestCheckRefusesNamesThatNeedEscapes: a name whose presentation form needs an escape would be
// written as another string than the one asked for (the zone-file fuzzer's crasher
// '.lAB.eXAmple, testdata in plugins/dns/zonefile), and never found again.
func TestCheckRefusesNamesThatNeedEscapes(t *testing.T) {
	for _, bad := range []string{"'.lab.example.", "a b.lab.example.", "a\\.b.lab.example.", "www\n.lab.example.", "a.*.lab.example.", "\"x\".lab.example."} {
		if _, err := Check("c", "lab.example.", bad, "A"); err == nil {
			t.Errorf("Check accepted %q", bad)
		}
	}
	for _, good := range []string{"lab.example.", "*.lab.example.", "_acme-challenge.www.lab.example.", "WWW.Lab.Example"} {
		if _, err := Check("c", "lab.example.", good, "TXT"); err != nil {
			t.Errorf("Check refused %q: %v", good, err)
		}
	}
}
