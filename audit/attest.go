package audit

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Kafka attestations. A processor does not audit every input record as an
// event of its own (that would cost more than the processing): it attests
// runs of records instead. One attestation (kind kafka_message, action
// "attest") says: processor Actor, in consumer group Group, handled Count
// records of Topic/Partition from FirstOffset to LastOffset, with these
// outcomes, and the records it saw hash to Digest. Consecutive attestations
// of one (group, topic, partition) cover contiguous offsets, so Coverage can
// prove that every offset was handled, or show where one was not.
//
// In per-message mode a processor writes one event per record instead
// (action "process", CorrelationID "<topic>/<partition>/<offset>", the
// record's outcome as the event's Outcome); Coverage reads both.

// Actions of kafka_message events.
const (
	ActionAttest  = "attest"
	ActionProcess = "process"
)

// Attribute keys of kafka_message events. Every other attribute of an
// attestation is an outcome count (applied, duplicate, dead_lettered, ...).
const (
	AttrGroup       = "group"
	AttrFirstOffset = "firstOffset"
	AttrLastOffset  = "lastOffset"
	AttrCount       = "count"
	AttrDigest      = "digest"
	AttrOffset      = "offset"
)

// OutcomeOK is the Outcome of attestations and of job events that report
// no failure.
const OutcomeOK = "ok"

// ErrNotAttestation is returned by ParseAttestation for events that are not
// kafka_message attest or process events.
var ErrNotAttestation = errors.New("not a kafka_message attestation")

// Attestation is what a processor states about a run of records of one
// partition.
type Attestation struct {
	// Actor is the processor principal, "processor:<name>".
	Actor     string
	Group     string
	Topic     string
	Partition int32
	// FirstOffset and LastOffset bound the run, both included.
	FirstOffset, LastOffset int64
	// Count is the number of records handled; it is LastOffset -
	// FirstOffset + 1 unless offsets in the run are missing from the
	// partition (compaction, transaction markers).
	Count int64
	// Digest is the hex RecordDigest of the run; empty in per-message mode.
	Digest string
	// Outcomes counts the records per outcome; the counts sum to Count.
	Outcomes map[string]int64
}

// Resource is "<topic>/<partition>".
func (a Attestation) Resource() string {
	return a.Topic + "/" + strconv.FormatInt(int64(a.Partition), 10)
}

// CorrelationID is "<topic>/<partition>/<first>-<last>".
func (a Attestation) CorrelationID() string {
	return a.Resource() + "/" + strconv.FormatInt(a.FirstOffset, 10) + "-" + strconv.FormatInt(a.LastOffset, 10)
}

// Event returns the attestation as an event, without ID and Time (New
// completes them).
func (a Attestation) Event() Event {
	attrs := make(map[string]string, 5+len(a.Outcomes))
	for o, n := range a.Outcomes {
		attrs[o] = strconv.FormatInt(n, 10)
	}
	attrs[AttrGroup] = a.Group
	attrs[AttrFirstOffset] = strconv.FormatInt(a.FirstOffset, 10)
	attrs[AttrLastOffset] = strconv.FormatInt(a.LastOffset, 10)
	attrs[AttrCount] = strconv.FormatInt(a.Count, 10)
	attrs[AttrDigest] = a.Digest
	return Event{
		Kind:          KindKafkaMessage,
		Actor:         a.Actor,
		Resource:      a.Resource(),
		Action:        ActionAttest,
		Outcome:       OutcomeOK,
		CorrelationID: a.CorrelationID(),
		Attributes:    attrs,
	}
}

// MessageEvent is the per-message form: one record of topic/partition at
// offset, handled by actor in group with the given outcome. ID and Time are
// left for New.
func MessageEvent(actor, group, topic string, partition int32, offset int64, outcome string) Event {
	res := Attestation{Topic: topic, Partition: partition}.Resource()
	off := strconv.FormatInt(offset, 10)
	return Event{
		Kind:          KindKafkaMessage,
		Actor:         actor,
		Resource:      res,
		Action:        ActionProcess,
		Outcome:       outcome,
		CorrelationID: res + "/" + off,
		Attributes:    map[string]string{AttrGroup: group, AttrOffset: off},
	}
}

// ParseAttestation reads an attest event, or a per-message process event as
// an attestation of one record. Other events give ErrNotAttestation;
// malformed ones an error saying what is wrong.
func ParseAttestation(e Event) (Attestation, error) {
	if e.Kind != KindKafkaMessage || e.Redacted || (e.Action != ActionAttest && e.Action != ActionProcess) {
		return Attestation{}, ErrNotAttestation
	}
	bad := func(format string, args ...any) (Attestation, error) {
		return Attestation{}, fmt.Errorf("kafka_message event %q: %s", e.ID, fmt.Sprintf(format, args...))
	}
	a := Attestation{Actor: e.Actor, Group: e.Attributes[AttrGroup]}
	i := strings.LastIndexByte(e.Resource, '/')
	if i <= 0 {
		return bad("resource %q is not <topic>/<partition>", e.Resource)
	}
	part, err := strconv.ParseInt(e.Resource[i+1:], 10, 32)
	if err != nil || part < 0 {
		return bad("resource %q is not <topic>/<partition>", e.Resource)
	}
	a.Topic, a.Partition = e.Resource[:i], int32(part)
	if a.Group == "" {
		return bad("no %s attribute", AttrGroup)
	}
	num := func(key string) (int64, error) {
		v, ok := e.Attributes[key]
		if !ok {
			return 0, fmt.Errorf("no %s attribute", key)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("attribute %s = %q is not a count or offset", key, v)
		}
		return n, nil
	}
	if e.Action == ActionProcess {
		off, err := num(AttrOffset)
		if err != nil {
			return bad("%v", err)
		}
		a.FirstOffset, a.LastOffset, a.Count = off, off, 1
		a.Outcomes = map[string]int64{e.Outcome: 1}
		return a, nil
	}
	if a.FirstOffset, err = num(AttrFirstOffset); err != nil {
		return bad("%v", err)
	}
	if a.LastOffset, err = num(AttrLastOffset); err != nil {
		return bad("%v", err)
	}
	if a.Count, err = num(AttrCount); err != nil {
		return bad("%v", err)
	}
	if a.LastOffset < a.FirstOffset {
		return bad("lastOffset %d is before firstOffset %d", a.LastOffset, a.FirstOffset)
	}
	if a.Count < 1 || a.Count > a.LastOffset-a.FirstOffset+1 {
		return bad("count %d does not fit offsets %d-%d", a.Count, a.FirstOffset, a.LastOffset)
	}
	a.Digest = e.Attributes[AttrDigest]
	if !isHex64(a.Digest) {
		return bad("digest %q is not a hex SHA-256", a.Digest)
	}
	a.Outcomes = map[string]int64{}
	var sum int64
	for k := range e.Attributes {
		switch k {
		case AttrGroup, AttrFirstOffset, AttrLastOffset, AttrCount, AttrDigest:
			continue
		}
		n, err := num(k)
		if err != nil {
			return bad("outcome %v", err)
		}
		a.Outcomes[k] = n
		sum += n
	}
	if sum != a.Count {
		return bad("outcome counts sum to %d, count is %d", sum, a.Count)
	}
	return a, nil
}

// RecordDigest is the SHA-256 an attestation carries: over the records of
// the run in offset order, each as its offset (8 bytes, big-endian), its
// key's length (4 bytes, big-endian), the key, its value's length (4 bytes,
// big-endian) and the value. A null key or value counts as empty. Anyone
// who reads the partition back can recompute it; Add does not allocate.
type RecordDigest struct {
	h   hash.Hash
	buf []byte
}

// NewRecordDigest returns an empty digest.
func NewRecordDigest() *RecordDigest {
	return &RecordDigest{h: sha256.New(), buf: make([]byte, 0, 64)}
}

// Add feeds one record.
func (d *RecordDigest) Add(offset int64, key string, value []byte) {
	b := binary.BigEndian.AppendUint64(d.buf[:0], uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	d.buf = b
	d.h.Write(b)
	d.h.Write(value)
}

// Sum returns the hex digest of the records added since the last Reset.
func (d *RecordDigest) Sum() string {
	var s [sha256.Size]byte
	return hex.EncodeToString(d.h.Sum(s[:0]))
}

// Reset empties the digest.
func (d *RecordDigest) Reset() { d.h.Reset() }

// OffsetRange is a run of offsets, both ends included.
type OffsetRange struct {
	First, Last int64
}

func (r OffsetRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// PartitionCoverage is what the attestations of one (group, topic,
// partition) cover.
type PartitionCoverage struct {
	Group     string
	Topic     string
	Partition int32
	// From and To are the lowest and highest offset attested.
	From, To     int64
	Attestations int
	// Records is the sum of the attestations' counts: a record attested
	// twice (redelivered after a crash or rebalance) counts twice.
	Records  int64
	Outcomes map[string]int64
	// Gaps are runs of offsets between From and To that no attestation
	// covers: records handled without an attestation, or never handled.
	Gaps []OffsetRange
	// Overlaps are runs covered by more than one attestation: redeliveries,
	// which the runtime recognises and counts as replayed, or a second
	// consumer of the partition.
	Overlaps []OffsetRange
	// Unaccounted is the number of offsets inside attested runs that no
	// record took (compaction, transaction markers); 0 on a plain topic.
	Unaccounted int64
}

// Covers reports whether every offset from first to last, both included,
// is attested.
func (p PartitionCoverage) Covers(first, last int64) bool {
	if first < p.From || last > p.To {
		return false
	}
	for _, g := range p.Gaps {
		if g.First <= last && g.Last >= first {
			return false
		}
	}
	return true
}

// CoverageReport is what a set of attestations covers, per (group, topic,
// partition) in that order.
type CoverageReport struct {
	Partitions []PartitionCoverage
	// Attestations is the number of attest and process events read.
	Attestations int
	// Invalid holds the errors of kafka_message attest or process events
	// that could not be read.
	Invalid []error
}

// Partition returns the coverage of one (group, topic, partition).
func (r CoverageReport) Partition(group, topic string, partition int32) (PartitionCoverage, bool) {
	for _, p := range r.Partitions {
		if p.Group == group && p.Topic == topic && p.Partition == partition {
			return p, true
		}
	}
	return PartitionCoverage{}, false
}

// Err returns nil when every attestation could be read and no partition
// has a gap; otherwise an error naming the gaps and invalid events (the
// first few of each). Overlaps are not errors: redelivery is expected.
func (r CoverageReport) Err() error {
	var msgs []string
	gaps := 0
	for _, p := range r.Partitions {
		for _, g := range p.Gaps {
			if gaps < 10 {
				msgs = append(msgs, fmt.Sprintf("group %s %s/%d: offsets %s not attested", p.Group, p.Topic, p.Partition, g))
			}
			gaps++
		}
	}
	for i, err := range r.Invalid {
		if i < 10 {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("audit coverage: %d gap(s), %d invalid attestation(s): %s", gaps, len(r.Invalid), strings.Join(msgs, "; "))
}

type partitionKey struct {
	group, topic string
	partition    int32
}

// CoverageCheck builds a CoverageReport from events one at a time, so that
// a trail of any length can be checked in one pass; it keeps one offset
// range per attestation.
type CoverageCheck struct {
	parts   map[partitionKey]*partitionRuns
	n       int
	invalid []error
}

type partitionRuns struct {
	runs        []OffsetRange
	records     int64
	outcomes    map[string]int64
	unaccounted int64
}

// NewCoverageCheck returns an empty check.
func NewCoverageCheck() *CoverageCheck {
	return &CoverageCheck{parts: map[partitionKey]*partitionRuns{}}
}

// Add reads one event; events other than kafka_message attest and process
// events are ignored.
func (c *CoverageCheck) Add(e Event) {
	a, err := ParseAttestation(e)
	if errors.Is(err, ErrNotAttestation) {
		return
	}
	if err != nil {
		c.invalid = append(c.invalid, err)
		return
	}
	c.n++
	k := partitionKey{a.Group, a.Topic, a.Partition}
	p := c.parts[k]
	if p == nil {
		p = &partitionRuns{outcomes: map[string]int64{}}
		c.parts[k] = p
	}
	p.runs = append(p.runs, OffsetRange{a.FirstOffset, a.LastOffset})
	p.records += a.Count
	p.unaccounted += a.LastOffset - a.FirstOffset + 1 - a.Count
	for o, n := range a.Outcomes {
		p.outcomes[o] += n
	}
}

// Report computes the coverage of the events added so far.
func (c *CoverageCheck) Report() CoverageReport {
	r := CoverageReport{Attestations: c.n, Invalid: append([]error(nil), c.invalid...)}
	for k, p := range c.parts {
		runs := append([]OffsetRange(nil), p.runs...)
		sort.Slice(runs, func(i, j int) bool {
			if runs[i].First != runs[j].First {
				return runs[i].First < runs[j].First
			}
			return runs[i].Last < runs[j].Last
		})
		pc := PartitionCoverage{Group: k.group, Topic: k.topic, Partition: k.partition,
			From: runs[0].First, To: runs[0].Last, Attestations: len(runs), Records: p.records,
			Outcomes: make(map[string]int64, len(p.outcomes)), Unaccounted: p.unaccounted}
		for o, n := range p.outcomes {
			pc.Outcomes[o] = n
		}
		for _, run := range runs[1:] {
			switch {
			case run.First > pc.To+1:
				pc.Gaps = append(pc.Gaps, OffsetRange{pc.To + 1, run.First - 1})
			case run.First <= pc.To:
				ov := OffsetRange{run.First, min(run.Last, pc.To)}
				if n := len(pc.Overlaps); n > 0 && ov.First <= pc.Overlaps[n-1].Last+1 {
					pc.Overlaps[n-1].Last = max(pc.Overlaps[n-1].Last, ov.Last)
				} else {
					pc.Overlaps = append(pc.Overlaps, ov)
				}
			}
			pc.To = max(pc.To, run.Last)
		}
		r.Partitions = append(r.Partitions, pc)
	}
	sort.Slice(r.Partitions, func(i, j int) bool {
		a, b := r.Partitions[i], r.Partitions[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return r
}

// Coverage checks the attestations among events.
func Coverage(events []Event) CoverageReport {
	c := NewCoverageCheck()
	for _, e := range events {
		c.Add(e)
	}
	return c.Report()
}

// AddTrail adds the events of a file trail (one Record per line), so that
// the trails of several instances can be checked together. It does not
// verify the chain: run Verify for that.
func (c *CoverageCheck) AddTrail(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		rec, err := parseRecord(sc.Bytes())
		if err != nil {
			return fmt.Errorf("audit: line %d: %w", line, err)
		}
		var e Event
		if err := json.Unmarshal(rec.Event, &e); err != nil {
			return fmt.Errorf("audit: line %d: event: %w", line, err)
		}
		c.Add(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("audit: reading trail: %w", err)
	}
	return nil
}

// CoverageOf reads one file trail and checks its attestations.
func CoverageOf(r io.Reader) (CoverageReport, error) {
	c := NewCoverageCheck()
	if err := c.AddTrail(r); err != nil {
		return CoverageReport{}, err
	}
	return c.Report(), nil
}

// CoverageFile is CoverageOf on the file at path.
func CoverageFile(path string) (CoverageReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return CoverageReport{}, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	return CoverageOf(f)
}
