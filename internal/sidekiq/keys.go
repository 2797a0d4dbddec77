package sidekiq

import (
	"strconv"
)

// drainctl's own keys, all under the namespace.

// rescueMarkerPrefix starts the key of a per-death rescue marker.
const rescueMarkerPrefix = "drainctl:rescued:"

// markerKey is the marker of one death of one process running one job:
// drainctl:rescued:<jid>:<identity>:<run_at in ms> (0 when the work entry had no run_at).
func (c *Client) markerKey(j Job) string {
	runAt := int64(0)
	if !j.RunAt.IsZero() {
		runAt = j.RunAt.UnixMilli()
	}
	return c.key(rescueMarkerPrefix + j.JID + ":" + j.Process + ":" + strconv.FormatInt(runAt, 10))
}
