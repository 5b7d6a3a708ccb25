package redis

import "time"

// SetIndexGrace shortens how long the indexes keep a room after its last
// addition, so that tests can watch removals.
func (s *Store) SetIndexGrace(d time.Duration) { s.grace = d }
