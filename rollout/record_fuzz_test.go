package rollout

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/drover-dev/drover/plugins/store"
)

// FuzzDecodeRecords feeds the rollout record reader arbitrary stored values: it returns records or
// an error, never panics; the records' accessors work on whatever was read; and what it accepts
// encodes and decodes to the same record.
func FuzzDecodeRecords(f *testing.F) {
	at := time.Unix(1764835200, 0).UTC()
	good, err := json.Marshal(&Record{ID: "web-3", Role: "web", Seq: 3, State: Draining, Image: Image{Identity: "sha256:ab", Short: "ab"},
		Transitions: []Transition{{State: Planned, At: at}, {State: Draining, At: at.Add(time.Minute), Note: "watching"}},
		KeepOld:     Duration(15 * time.Minute), Errors: []ErrorEntry{{At: at, State: Booting, Message: "launch: timeout"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"state":"no-such-state","keep_old":"-5m","transitions":[null]}`))
	f.Add([]byte(`{"keep_old":"9999999999999h"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeRecords([]store.Item{{Key: "rollouts/web/3", Value: b, Version: 1}})
		if err != nil {
			return
		}
		for _, r := range recs {
			for _, s := range States {
				_ = r.At(s)
			}
			_ = r.State.Terminal()
			_ = r.State.Valid()
			_ = r.KeepOld.String()
			c := r.clone()
			enc, err := json.Marshal(c)
			if err != nil {
				t.Fatalf("a record read from the store does not encode: %v", err)
			}
			again, err := decodeRecords([]store.Item{{Key: "k", Value: enc, Version: 1}})
			if err != nil {
				t.Fatalf("a record drover wrote is refused: %v\n%s", err, enc)
			}
			if enc2, _ := json.Marshal(again[0]); string(enc2) != string(enc) {
				t.Fatalf("round trip changed the record:\n%s\n%s", enc, enc2)
			}
		}
	})
}
