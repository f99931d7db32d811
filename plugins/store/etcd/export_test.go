package etcd

import "time"

// SetClock makes s stamp leases with now, as a machine whose clock is off would.
func SetClock(s *Store, now func() time.Time) { s.now = now }
