package servebench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/aetherai/aether/clickstream"
	"github.com/aetherai/aether/event"
	"github.com/aetherai/aether/model"
	"github.com/aetherai/aether/operators/features"
)

// prepare generates TrainEvents events, trains the model on them, saves it
// to a temporary directory and loads it with its SHA-256 pinned, and builds
// every generator user's feature record from the same events.
func prepare(ctx context.Context, cfg Config, log io.Writer) (*fixture, error) {
	start := time.Now()
	gen, err := clickstream.New(clickstream.Config{Users: TrainUsers, Products: TrainProducts, Seed: TrainSeed})
	if err != nil {
		return nil, err
	}
	evs := make([]event.Event, 0, cfg.TrainEvents)
	for range cfg.TrainEvents {
		if r := gen.Next(); r.Kind != clickstream.Malformed {
			evs = append(evs, r.Event)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m, err := model.Train(slices.Values(evs))
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	fx := &fixture{}
	if fx.dir, err = os.MkdirTemp("", "aether-servebench-"); err != nil {
		return nil, err
	}
	dir := filepath.Join(fx.dir, "model")
	if err := m.Save(dir); err != nil {
		fx.close()
		return nil, err
	}
	if fx.scorer, err = model.Load(dir, model.ExpectSHA256(m.SHA256())); err != nil {
		fx.close()
		return nil, err
	}
	fx.records = userRecords(evs, TrainUsers, RecentItems)
	st := m.Stats()
	fmt.Fprintf(log, "trained the model on %s events of %d users in %.2f s: %d items, opset %d, sha256 %.12s; loaded from %s\n",
		thousands(int64(st.Events)), st.Users, time.Since(start).Seconds(), m.Items(), fx.scorer.Metadata().Opset, m.SHA256(), dir)
	return fx, nil
}

// userRecords returns, for users "user_0" ... "user_<users-1>" in that
// order, a feature record whose RecentItems are the user's last n events,
// oldest first, as the features operator keeps them.
func userRecords(evs []event.Event, users, n int) []features.Record {
	out := make([]features.Record, users)
	index := make(map[string]int, users)
	for i := range out {
		id := "user_" + strconv.Itoa(i)
		out[i] = features.Record{UserID: id, RecentItems: []features.RecentItem{}}
		index[id] = i
	}
	for _, e := range evs {
		i, ok := index[e.UserID]
		if !ok {
			continue
		}
		r := &out[i]
		r.EventsTotal++
		r.LastSeen = e.Timestamp
		r.RecentItems = append(r.RecentItems, features.RecentItem{ProductID: e.ProductID, EventType: e.EventType, At: e.Timestamp})
		if len(r.RecentItems) > 2*n {
			r.RecentItems = append(r.RecentItems[:0], r.RecentItems[len(r.RecentItems)-n:]...)
		}
	}
	for i := range out {
		if items := out[i].RecentItems; len(items) > n {
			out[i].RecentItems = items[len(items)-n:]
		}
	}
	return out
}

// inference is one inference measurement.
type inference struct {
	calls, users int64
	usersPerSec  float64
	p50, p99     time.Duration
	empty        int64 // records that got no item
}

// measureInference calls Score with batch records at a time, cycling over
// the generator users' records, from one goroutine: untimed for a tenth of
// cfg.Duration (at most a second), then for cfg.Duration, timing every
// call.
func measureInference(ctx context.Context, fx *fixture, cfg Config, batch int, log io.Writer) (inference, error) {
	recs := fx.records
	// ring holds the records repeated, so that ring[s:s+batch] is a batch
	// for every start s < len(recs).
	ring := slices.Clone(recs)
	for len(ring) < len(recs)+batch {
		ring = append(ring, recs...)
	}
	next := 0
	call := func() (empty int64, err error) {
		b := ring[next : next+batch]
		next = (next + batch) % len(recs)
		out, err := fx.scorer.Score(ctx, b, cfg.K)
		if err != nil {
			return 0, err
		}
		if len(out) != len(b) {
			return 0, fmt.Errorf("score: %d answers for %d records", len(out), len(b))
		}
		for _, items := range out {
			if len(items) == 0 {
				empty++
			}
		}
		return empty, nil
	}

	warm := min(cfg.Duration/10, time.Second)
	for end := time.Now().Add(warm); time.Now().Before(end); {
		if _, err := call(); err != nil {
			return inference{}, err
		}
	}
	lat := make([]time.Duration, 0, 1<<16)
	var res inference
	start := time.Now()
	end := start.Add(cfg.Duration)
	for {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		if res.calls%256 == 0 {
			if err := ctx.Err(); err != nil {
				return inference{}, err
			}
		}
		empty, err := call()
		if err != nil {
			return inference{}, err
		}
		lat = append(lat, time.Since(t0))
		res.calls++
		res.users += int64(batch)
		res.empty += empty
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	res.usersPerSec = float64(res.users) / elapsed.Seconds()
	res.p50, res.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	fmt.Fprintf(log, "inference, %d record(s) per call: %s users/s (%s calls in %.2f s), per call p50 %s, p99 %s; %d records without items\n",
		batch, thousands(int64(res.usersPerSec)), thousands(res.calls), elapsed.Seconds(), micros(res.p50), micros(res.p99), res.empty)
	return res, nil
}
