package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Record is one line of a file trail. Hash is the SHA-256 of Seq, PrevHash
// and the event digest (see ChainHash); the event digest is the SHA-256 of
// Event's bytes as written, or, for a redacted event, its eventDigest field.
// Because the chain covers the digest and not the event bytes, Redact can
// replace an event with its redacted form without breaking the chain.
type Record struct {
	Seq      uint64          `json:"seq"`
	PrevHash string          `json:"prevHash"`
	Hash     string          `json:"hash"`
	Event    json.RawMessage `json:"event"`
}

// GenesisHash is the PrevHash of a trail's first record, whose Seq is 1.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Digest is the hex SHA-256 of an event's canonical JSON (json.Marshal of
// the Event), the bytes a file trail writes.
func Digest(e Event) (string, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	return digestBytes(b), nil
}

func digestBytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ChainHash is a record's hash: the hex SHA-256 of the decimal seq, a
// newline, prevHash, a newline and the event digest.
func ChainHash(seq uint64, prevHash, eventDigest string) string {
	h := sha256.New()
	h.Write(strconv.AppendUint(nil, seq, 10))
	h.Write([]byte{'\n'})
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write([]byte(eventDigest))
	return hex.EncodeToString(h.Sum(nil))
}

// recordDigest decodes r's event and returns it with the digest the chain
// covers.
func recordDigest(r Record) (Event, string, error) {
	var e Event
	if len(r.Event) == 0 {
		return e, "", fmt.Errorf("no event")
	}
	if err := json.Unmarshal(r.Event, &e); err != nil {
		return e, "", fmt.Errorf("event is not valid JSON: %w", err)
	}
	if !e.Redacted {
		return e, digestBytes(r.Event), nil
	}
	if !isHex64(e.EventDigest) {
		return e, "", fmt.Errorf("redacted event has eventDigest %q, not a hex SHA-256", e.EventDigest)
	}
	return e, e.EventDigest, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// parseRecord decodes one line.
func parseRecord(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("not a record: %w", err)
	}
	if r.Seq == 0 || !isHex64(r.PrevHash) || !isHex64(r.Hash) || len(r.Event) == 0 {
		return r, fmt.Errorf("not a record: seq, prevHash, hash or event missing or malformed")
	}
	return r, nil
}

// appendRecord appends the JSON line of the record chaining e after
// (seq-1, prevHash) (see NewRecord) and returns the new record's hash.
func appendRecord(buf []byte, seq uint64, prevHash string, e Event) ([]byte, string, error) {
	r, err := NewRecord(seq, prevHash, e)
	if err != nil {
		return buf, "", err
	}
	line, err := json.Marshal(r)
	if err != nil {
		return buf, "", fmt.Errorf("audit: encoding event %q: %w", e.ID, err)
	}
	buf = append(buf, line...)
	return append(buf, '\n'), r.Hash, nil
}

// NewRecord returns the record that chains e after the record with seq-1
// and hash prevHash, exactly as a file trail writes it. Trails kept
// elsewhere (Elasticsearch) store these records, so one Verify covers all.
func NewRecord(seq uint64, prevHash string, e Event) (Record, error) {
	ev, err := json.Marshal(normalize(e))
	if err != nil {
		return Record{}, fmt.Errorf("audit: encoding event %q: %w", e.ID, err)
	}
	return Record{Seq: seq, PrevHash: prevHash, Hash: ChainHash(seq, prevHash, digestBytes(ev)), Event: ev}, nil
}

// Check decodes r's event and checks that r's hash matches its seq,
// prevHash and event digest; it does not check r's place in a chain
// (Verify does).
func (r Record) Check() (Event, error) {
	if r.Seq == 0 || !isHex64(r.PrevHash) || !isHex64(r.Hash) {
		return Event{}, fmt.Errorf("not a record: seq, prevHash or hash missing or malformed")
	}
	e, digest, err := recordDigest(r)
	if err != nil {
		return e, err
	}
	if ChainHash(r.Seq, r.PrevHash, digest) != r.Hash {
		return e, fmt.Errorf("record seq %d: content does not match the record's hash", r.Seq)
	}
	return e, nil
}

// Redacted returns r with its event replaced by the redacted form Redact
// writes (ID, Time, Kind and the original event's digest); the hash stays
// valid. A record already redacted is returned unchanged.
func (r Record) Redacted() (Record, error) {
	e, digest, err := recordDigest(r)
	if err != nil {
		return r, err
	}
	if e.Redacted {
		return r, nil
	}
	ev, err := jsonMarshal(e.redact(digest))
	if err != nil {
		return r, err
	}
	r.Event = ev
	return r, nil
}
