package clickstream

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aetherai/aether/event"
)

// Kind classifies a generated record.
type Kind uint8

// Record kinds.
const (
	// Valid is a fresh, well-formed event in event-time order.
	Valid Kind = iota
	// Duplicate repeats an earlier Valid or OutOfOrder event: same Key,
	// Event (EventID included) and Raw bytes.
	Duplicate
	// OutOfOrder is a fresh, well-formed event whose time was shifted back by
	// 1ms..Config.OutOfOrderMax.
	OutOfOrder
	// Malformed carries bytes that do not decode into a valid event.
	Malformed
)

var kindNames = [...]string{"valid", "duplicate", "out_of_order", "malformed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Record is one generated message as it would be produced to
// user_events_raw.
type Record struct {
	// Key is the userId, for malformed records too.
	Key string
	// Event is the decoded event; the zero Event for Malformed records.
	Event event.Event
	// Raw is the JSON encoding of Event (byte-identical to json.Marshal), or
	// the garbage bytes of a Malformed record. Each Record owns its Raw.
	Raw  []byte
	Kind Kind
}

// Stats counts the records emitted so far by kind.
type Stats struct {
	Valid, Duplicate, OutOfOrder, Malformed uint64
}

// Total is the number of records emitted.
func (s Stats) Total() uint64 { return s.Valid + s.Duplicate + s.OutOfOrder + s.Malformed }

// successorWeights are the probabilities of a product's successors, most
// likely first (normalised over the list's actual length).
var successorWeights = [NumSuccessors]float64{0.6, 0.3, 0.1}

const (
	// recentItems is how many recently clicked and carted items per user
	// carts and purchases choose from.
	recentItems = 4
	// favourRecent is the probability a cart (purchase) picks a recently
	// clicked (carted) item when there is one.
	favourRecent = 0.8
	// dupWindow is how many recent events duplicates are drawn from: a
	// client retries what it sent moments ago. It is below the runtime's
	// default per-key event-ID window (8), so every retry is recognisable.
	dupWindow = 4
	// zipfRetries bounds redraws when a popularity draw must avoid the
	// current successor list.
	zipfRetries = 16
)

type userState struct {
	next int64 // event time of the user's next event, Unix ms
	cur  int32 // current item of the session's walk, -1 before the first
	// recent clicks and carts of this session, newest first
	clicks, carts   [recentItems]int32
	nclicks, ncarts uint8
}

// Generator produces a deterministic synthetic clickstream. It is not safe
// for concurrent use.
type Generator struct {
	cfg  Config
	rng  *rand.Rand
	zipf *rand.Zipf

	succ    []int32 // Products x nsucc successor lists
	nsucc   int
	succCum [NumSuccessors]float64

	userIDs []string
	ips     []string
	users   []userState
	heap    []int32 // user indexes, min event time first

	mixCum     [len(event.Types)]float64
	pMalformed float64 // cumulative thresholds on one uniform draw
	pDuplicate float64
	pOutOfOrd  float64
	pEnd       float64 // probability a session ends after an event

	meanGapMs   float64
	gapCapMs    int64
	minSessMs   int64
	sessExtraMs float64
	oooMaxMs    int64

	evtPrefix string
	seq       uint64 // fresh events generated
	counts    []uint64
	stats     Stats
	recent    [dupWindow]event.Event
	nrecent   int
	scratch   []byte
}

// New validates cfg, applies defaults and returns a generator.
func New(cfg Config) (*Generator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, 0x636c69636b73)), // "clicks"
		evtPrefix: "evt_" + strconv.FormatUint(cfg.Seed, 10) + "_",
		scratch:   make([]byte, 0, 256),
	}
	g.zipf = rand.NewZipf(g.rng, cfg.ZipfS, 1, uint64(cfg.Products-1))

	g.buildSuccessors()

	sum := 0.0
	for i, w := range cfg.Mix {
		sum += w
		g.mixCum[i] = sum
	}
	for i := range g.mixCum {
		g.mixCum[i] /= sum
	}
	g.mixCum[len(g.mixCum)-1] = 1

	g.pMalformed = cfg.Malformed
	g.pDuplicate = g.pMalformed + cfg.Duplicate
	g.pOutOfOrd = g.pDuplicate + cfg.OutOfOrder
	g.pEnd = 1 / cfg.SessionLength
	g.meanGapMs = float64(cfg.MeanGap) / float64(time.Millisecond)
	g.gapCapMs = cfg.maxInSessionGap().Milliseconds()
	g.minSessMs = cfg.minSessionGap().Milliseconds()
	g.sessExtraMs = float64(cfg.SessionGap-cfg.minSessionGap()) / float64(time.Millisecond)
	g.oooMaxMs = cfg.OutOfOrderMax.Milliseconds()

	n := cfg.Users
	g.userIDs = make([]string, n)
	g.ips = make([]string, n)
	g.users = make([]userState, n)
	g.heap = make([]int32, n)
	g.counts = make([]uint64, n)
	start := cfg.Start.UnixMilli()
	span := cfg.SessionGap.Milliseconds()
	for i := range n {
		g.userIDs[i] = "user_" + strconv.Itoa(i)
		h := i + 1 // 10.0.0.1 ...
		g.ips[i] = "10." + strconv.Itoa(h>>16&255) + "." + strconv.Itoa(h>>8&255) + "." + strconv.Itoa(h&255)
		// Stagger first sessions over one mean session gap.
		g.users[i] = userState{next: start + g.rng.Int64N(span), cur: -1}
		g.heap[i] = int32(i)
	}
	for i := n/2 - 1; i >= 0; i-- {
		g.down(i)
	}
	return g, nil
}

// buildSuccessors draws each product's successor list: distinct products,
// never the product itself, uniform over the catalogue, from a random
// source of its own so the lists depend on Seed and Products only.
func (g *Generator) buildSuccessors() {
	p := g.cfg.Products
	g.nsucc = min(NumSuccessors, p-1)
	if g.nsucc == 0 {
		return
	}
	r := rand.New(rand.NewPCG(g.cfg.Seed, 0x73756363)) // "succ"
	g.succ = make([]int32, p*g.nsucc)
	for i := range p {
		list := g.succ[i*g.nsucc : (i+1)*g.nsucc]
		for k := range list {
		draw:
			for {
				c := int32(r.IntN(p))
				if int(c) == i {
					continue
				}
				for _, prev := range list[:k] {
					if prev == c {
						continue draw
					}
				}
				list[k] = c
				break
			}
		}
	}
	sum := 0.0
	for k := range g.nsucc {
		sum += successorWeights[k]
		g.succCum[k] = sum
	}
	for k := range g.nsucc {
		g.succCum[k] /= sum
	}
	g.succCum[g.nsucc-1] = 1
}

// Config returns the effective configuration, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// ProductID is the id of product i: "prod_<i>".
func ProductID(i int) string { return "prod_" + strconv.Itoa(i) }

// Successors returns the successor list of a product id, most likely first
// (a transition takes them with probabilities 0.6, 0.3, 0.1), or nil if id
// is not one of the generator's products. The lists depend on Seed and
// Products only.
func (g *Generator) Successors(productID string) []string {
	s, ok := strings.CutPrefix(productID, "prod_")
	if !ok {
		return nil
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= g.cfg.Products || ProductID(i) != productID {
		return nil
	}
	out := make([]string, g.nsucc)
	for k, c := range g.succ[i*g.nsucc : (i+1)*g.nsucc] {
		out[k] = ProductID(int(c))
	}
	return out
}

// Take returns the next n records.
func (g *Generator) Take(n int) []Record {
	out := make([]Record, max(n, 0))
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

// Stats returns the number of records emitted so far by kind.
func (g *Generator) Stats() Stats { return g.stats }

// Expected returns, for every user with at least one, the number of
// distinct valid events emitted so far: Valid and OutOfOrder records;
// duplicates count once (as their original), malformed records not at all.
// A pipeline that consumed every record should count exactly this.
func (g *Generator) Expected() map[string]uint64 {
	m := make(map[string]uint64)
	for i, c := range g.counts {
		if c > 0 {
			m[g.userIDs[i]] = c
		}
	}
	return m
}

// Next returns the next record. Fresh events (Valid, OutOfOrder, and the
// events Malformed records are made from) come in global event-time order,
// users interleaved, apart from the shifted times of OutOfOrder records;
// duplicates repeat one of the last 4 Valid or OutOfOrder events.
func (g *Generator) Next() Record {
	u := g.rng.Float64()
	switch {
	case u < g.pMalformed:
		ui, e := g.fresh()
		g.stats.Malformed++
		return Record{Key: g.userIDs[ui], Raw: g.malformed(&e), Kind: Malformed}
	case u < g.pDuplicate && g.nrecent > 0:
		e := g.recent[g.rng.IntN(min(g.nrecent, dupWindow))]
		g.stats.Duplicate++
		return Record{Key: e.UserID, Event: e, Raw: g.encode(&e), Kind: Duplicate}
	}
	ui, e := g.fresh()
	kind := Valid
	if u >= g.pDuplicate && u < g.pOutOfOrd {
		kind = OutOfOrder
		shift := 1 + g.rng.Int64N(g.oooMaxMs)
		e.Timestamp = time.UnixMilli(e.Timestamp.UnixMilli() - shift).UTC()
		g.stats.OutOfOrder++
	} else {
		g.stats.Valid++
	}
	g.counts[ui]++
	g.recent[g.nrecent%dupWindow] = e
	g.nrecent++
	return Record{Key: e.UserID, Event: e, Raw: g.encode(&e), Kind: kind}
}

// fresh generates the event of the user due next and advances that user.
func (g *Generator) fresh() (int32, event.Event) {
	ui := g.heap[0]
	us := &g.users[ui]
	ts := us.next

	r := g.rng.Float64()
	t := 0
	for t < len(g.mixCum)-1 && r >= g.mixCum[t] {
		t++
	}
	typ := event.Types[t]
	var item int32
	switch typ {
	case event.View, event.Click:
		item = g.walk(us.cur)
		us.cur = item
		if typ == event.Click {
			push(&us.clicks, &us.nclicks, item)
		}
	case event.AddToCart:
		if us.nclicks > 0 && g.rng.Float64() < favourRecent {
			item = us.clicks[g.rng.IntN(int(us.nclicks))]
		} else {
			item = g.fallback(us)
		}
		push(&us.carts, &us.ncarts, item)
	default: // purchase
		switch {
		case us.ncarts > 0 && g.rng.Float64() < favourRecent:
			item = us.carts[g.rng.IntN(int(us.ncarts))]
		case us.nclicks > 0 && g.rng.Float64() < favourRecent:
			item = us.clicks[g.rng.IntN(int(us.nclicks))]
		default:
			item = g.fallback(us)
		}
	}

	// Advance the user: next event of this session, or a new session.
	if g.rng.Float64() < g.pEnd {
		us.next = ts + g.minSessMs + int64(g.rng.ExpFloat64()*g.sessExtraMs)
		us.cur, us.nclicks, us.ncarts = -1, 0, 0
	} else {
		us.next = ts + min(1+int64(g.rng.ExpFloat64()*g.meanGapMs), g.gapCapMs)
	}
	g.down(0)

	g.seq++
	// One allocation for both ids: "prod_<item>evt_<seed>_<seq>".
	b := append(g.scratch[:0], "prod_"...)
	b = strconv.AppendInt(b, int64(item), 10)
	cut := len(b)
	b = append(b, g.evtPrefix...)
	b = strconv.AppendUint(b, g.seq, 10)
	g.scratch = b
	ids := string(b)

	return ui, event.Event{
		UserID:    g.userIDs[ui],
		ProductID: ids[:cut],
		EventType: typ,
		Timestamp: time.UnixMilli(ts).UTC(),
		ClientIP:  g.ips[ui],
		EventID:   ids[cut:],
	}
}

// walk returns the next viewed or clicked item after cur.
func (g *Generator) walk(cur int32) int32 {
	if cur < 0 || g.nsucc == 0 {
		return int32(g.zipf.Uint64())
	}
	list := g.succ[int(cur)*g.nsucc : (int(cur)+1)*g.nsucc]
	if g.rng.Float64() < g.cfg.Transition {
		r := g.rng.Float64()
		k := 0
		for k < g.nsucc-1 && r >= g.succCum[k] {
			k++
		}
		return list[k]
	}
	// A popularity draw outside the successor list, so the share of
	// transitions that follow the list is Transition.
	var c int32
	for range zipfRetries {
		c = int32(g.zipf.Uint64())
		hit := false
		for _, s := range list {
			hit = hit || s == c
		}
		if !hit {
			break
		}
	}
	return c
}

// fallback is the item of a cart or purchase with no recent item to use:
// the item the user is looking at, or a popularity draw.
func (g *Generator) fallback(us *userState) int32 {
	if us.cur >= 0 {
		return us.cur
	}
	return int32(g.zipf.Uint64())
}

func push(list *[recentItems]int32, n *uint8, item int32) {
	copy(list[1:], list[:recentItems-1])
	list[0] = item
	if *n < recentItems {
		*n++
	}
}

// less orders heap entries by next event time, then user index.
func (g *Generator) less(a, b int32) bool {
	ua, ub := g.users[a].next, g.users[b].next
	return ua < ub || ua == ub && a < b
}

func (g *Generator) down(i int) {
	h := g.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && g.less(h[r], h[l]) {
			j = r
		}
		if !g.less(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// encode returns the JSON encoding of e, byte-identical to json.Marshal.
// Every string the generator makes is plain ASCII that needs no escaping.
func (g *Generator) encode(e *event.Event) []byte {
	b := appendEvent(g.scratch[:0], e, 0)
	g.scratch = b
	return append([]byte(nil), b...)
}

// Fields appendEvent can leave out, to make malformed records.
const (
	omitUser = 1 << iota
	omitProduct
	omitType
	omitTime
)

func appendEvent(b []byte, e *event.Event, omit int) []byte {
	b = append(b, '{')
	if omit&omitUser == 0 {
		b = appendField(b, "userId", e.UserID)
	}
	if omit&omitProduct == 0 {
		b = appendField(b, "productId", e.ProductID)
	}
	if omit&omitType == 0 {
		b = appendField(b, "eventType", string(e.EventType))
	}
	if omit&omitTime == 0 {
		b = appendSep(b)
		b = append(b, `"timestamp":"`...)
		b = e.Timestamp.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if e.ClientIP != "" {
		b = appendField(b, "clientIp", e.ClientIP)
	}
	if e.EventID != "" {
		b = appendField(b, "eventId", e.EventID)
	}
	return append(b, '}')
}

func appendSep(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return b
}

// appendField appends "name":"value"; value must need no JSON escaping.
func appendField(b []byte, name, value string) []byte {
	b = appendSep(b)
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = append(b, value...)
	return append(b, '"')
}
