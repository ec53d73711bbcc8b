// Command proxygen writes the evaluation datasets of the model package's
// "Why built as it is" table as session TSV files (SessionId, ItemId,
// Time): `go run ./model/eval/proxygen syn|proxy DIR` writes
// DIR/NAME_{train,valid,test,trainvalid}.tsv, sessions split 80/10/10 by
// a hash of their number (trainvalid = train + valid).
//
//   - syn: the clickstream generator's defaults, 1M records.
//   - proxy: 40,000 products, 20,000 users, sessions of 6 on average, and
//     after each click a re-click with probability 0.35 (repeated), of the
//     same item (60%) or one of the last 5 (40%), as real click logs
//     re-click items.
//
// Then, e.g.: runner train --events DIR/proxy_train.tsv -o M and
// runner eval --model M --train DIR/proxy_train.tsv --test
// DIR/proxy_valid.tsv --json.
package main

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aetherai/aether/clickstream"
)

type click struct {
	item string
	t    float64
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "syn" && os.Args[1] != "proxy") {
		fmt.Fprintln(os.Stderr, "usage: proxygen syn|proxy DIR")
		os.Exit(2)
	}
	name, dir := os.Args[1], os.Args[2]
	var cfg clickstream.Config
	n := 1_000_000
	repeat := 0.0
	if name == "proxy" {
		cfg = clickstream.Config{Seed: 7, Users: 20000, Products: 40000, SessionLength: 6}
		n = 1_000_000
		repeat = 0.35
	}
	g, err := clickstream.New(cfg)
	if err != nil {
		panic(err)
	}
	users := map[string][]click{}
	for _, r := range g.Take(n) {
		if r.Kind != clickstream.Valid {
			continue
		}
		e := r.Event
		users[e.UserID] = append(users[e.UserID], click{e.ProductID, float64(e.Timestamp.UnixMilli()) / 1000})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	var sessions [][]click
	keys := make([]string, 0, len(users))
	for u := range users {
		keys = append(keys, u)
	}
	slices.Sort(keys)
	for _, u := range keys {
		h := users[u]
		slices.SortFunc(h, func(a, b click) int {
			if a.t < b.t {
				return -1
			}
			if a.t > b.t {
				return 1
			}
			return 0
		})
		start := 0
		for i := 1; i <= len(h); i++ {
			if i < len(h) && h[i].t-h[i-1].t <= (30*time.Minute).Seconds() {
				continue
			}
			s := slices.Clone(h[start:i])
			if repeat > 0 {
				// re-clicks: after a click, with probability repeat, click
				// again the same item (60%) or one of the last 5 (40%).
				var out []click
				for k, c := range s {
					out = append(out, c)
					for rng.Float64() < repeat {
						var it string
						if rng.Float64() < 0.6 {
							it = c.item
						} else {
							lo := max(0, k-4)
							it = s[lo+rng.IntN(k-lo+1)].item
						}
						out = append(out, click{it, out[len(out)-1].t + 1})
					}
				}
				s = out
			}
			sessions = append(sessions, s)
			start = i
		}
	}
	files := map[string]*bufio.Writer{}
	for _, part := range []string{"train", "valid", "test", "trainvalid"} {
		f, err := os.Create(filepath.Join(dir, name+"_"+part+".tsv"))
		if err != nil {
			panic(err)
		}
		defer f.Close()
		w := bufio.NewWriter(f)
		defer w.Flush()
		fmt.Fprintln(w, "SessionId\tItemId\tTime")
		files[part] = w
	}
	for i, s := range sessions {
		h := fnv.New32a()
		fmt.Fprint(h, i)
		r := h.Sum32() % 10
		parts := []string{"train", "trainvalid"}
		if r == 8 {
			parts = []string{"valid", "trainvalid"}
		} else if r == 9 {
			parts = []string{"test"}
		}
		for _, p := range parts {
			for _, c := range s {
				fmt.Fprintf(files[p], "%d\t%s\t%.3f\n", i, c.item, c.t)
			}
		}
	}
}
