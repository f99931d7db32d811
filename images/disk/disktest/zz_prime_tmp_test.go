//go:build primearm64

package disktest

import "testing"

func TestPrimeArm64(t *testing.T) { t.Log(BaseTreeArch(t, "arm64")) }
