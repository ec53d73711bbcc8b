// Package approval keeps the approved-models manifest: the list of model
// SHA-256s that may be served, each with who approved it, under which
// change ticket and when. Approve adds to it; a Gate checks a model
// against it before the model is loaded, counts refusals and logs every
// decision.
//
// # The manifest
//
// A JSON file, written with mode 0600 through a temporary file and a
// rename (a reader sees the old or the new file, never a mix):
//
//	{
//	  "format": "aether.approved-models/1",
//	  "models": [
//	    {
//	      "sha256": "9f86d0...",
//	      "version": "itemcf-20260201T000000Z",
//	      "approvedBy": "alice",
//	      "ticket": "CHG-1234",
//	      "approvedAt": "2026-02-01T10:00:00Z"
//	    }
//	  ]
//	}
//
// Entries are in approval order and never rewritten: one entry per
// SHA-256 (of model.onnx, as metadata.json records it). Approving a model
// that is already in the manifest under the same ticket changes nothing
// (a retried approval is harmless); under another ticket it is refused
// with a *ConflictError naming the existing approval, so that the record
// of who approved a model and why stays the first, unambiguous one.
// Concurrent Approve calls on one host are serialised by an advisory lock
// on the manifest's directory.
//
// # Events
//
// Every approval, refusal and admission is a structured log line with
// event "model_change" (see Change); the runner's logger also writes
// such lines to the audit trail (audit.LogHandler). The lines hold
// names, ticket ids and hashes only, no secrets.
package approval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aetherai/aether/model"
)

// Format names the manifest's layout; Load refuses other formats.
const Format = "aether.approved-models/1"

// DefaultPath is the manifest the runner's commands use when neither a
// flag nor the configuration names one.
const DefaultPath = "approved-models.json"

// maxField bounds approvedBy and ticket, in bytes.
const maxField = 200

// Entry is one approved model.
type Entry struct {
	// SHA256 is model.onnx's hex SHA-256, lower case.
	SHA256 string `json:"sha256"`
	// Version is the model's version from its metadata.json, for people:
	// the SHA-256 is what is checked.
	Version string `json:"version"`
	// ApprovedBy names the approver; Ticket is the change ticket.
	ApprovedBy string `json:"approvedBy"`
	Ticket     string `json:"ticket"`
	// ApprovedAt is when it was approved (UTC, seconds).
	ApprovedAt time.Time `json:"approvedAt"`
}

type manifestFile struct {
	Format string  `json:"format"`
	Models []Entry `json:"models"`
}

// Manifest is a loaded approved-models manifest. It is a snapshot: it does
// not see later changes to the file.
type Manifest struct {
	path    string
	entries []Entry
}

// NotApprovedError reports a model whose SHA-256 is not in the manifest.
type NotApprovedError struct {
	SHA256 string
	// Version is the model's version, when the caller knew it.
	Version string
	// Manifest is the manifest's path.
	Manifest string
}

func (e *NotApprovedError) Error() string {
	v := ""
	if e.Version != "" {
		v = " (version " + e.Version + ")"
	}
	return fmt.Sprintf("model sha256 %s%s is not approved: it is not in the approved-models manifest %s "+
		"(approve it with `runner model approve DIR|URI --by NAME --ticket ID --manifest %s`)",
		e.SHA256, v, e.Manifest, e.Manifest)
}

// ConflictError reports an approval of a model that the manifest already
// approves under another ticket.
type ConflictError struct {
	// Existing is the approval in the manifest; Ticket the refused one's.
	Existing Entry
	Ticket   string
	Manifest string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("model sha256 %s is already approved in %s by %s under ticket %s at %s; not approving it again under ticket %s",
		e.Existing.SHA256, e.Manifest, e.Existing.ApprovedBy, e.Existing.Ticket,
		e.Existing.ApprovedAt.Format(time.RFC3339), e.Ticket)
}

// Load reads and checks the manifest at path. A missing file is an error
// that matches fs.ErrNotExist.
func Load(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("approval: manifest: %w", err)
	}
	var f manifestFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("approval: manifest %s: %w", path, err)
	}
	if f.Format != Format {
		return nil, fmt.Errorf("approval: manifest %s: format %q, this build reads %q", path, f.Format, Format)
	}
	seen := make(map[string]int, len(f.Models))
	for i := range f.Models {
		e := &f.Models[i]
		e.SHA256 = strings.ToLower(e.SHA256)
		bad := func(field, reason string) error {
			return fmt.Errorf("approval: manifest %s: models[%d].%s: %s", path, i, field, reason)
		}
		if !validSHA(e.SHA256) {
			return nil, bad("sha256", "must be 64 hex digits")
		}
		if j, dup := seen[e.SHA256]; dup {
			return nil, bad("sha256", fmt.Sprintf("approved twice (also models[%d])", j))
		}
		seen[e.SHA256] = i
		if err := checkField(e.ApprovedBy); err != nil {
			return nil, bad("approvedBy", err.Error())
		}
		if err := checkField(e.Ticket); err != nil {
			return nil, bad("ticket", err.Error())
		}
		if e.ApprovedAt.IsZero() {
			return nil, bad("approvedAt", "is required")
		}
	}
	return &Manifest{path: path, entries: f.Models}, nil
}

// Path is the file the manifest was loaded from.
func (m *Manifest) Path() string { return m.path }

// Entries returns the approvals, oldest first.
func (m *Manifest) Entries() []Entry { return slices.Clone(m.entries) }

// Check returns the approval of the model whose model.onnx has the hex
// SHA-256 sha (any case), or a *NotApprovedError.
func (m *Manifest) Check(sha string) (Entry, error) {
	sha = strings.ToLower(strings.TrimSpace(sha))
	for _, e := range m.entries {
		if e.SHA256 == sha {
			return e, nil
		}
	}
	return Entry{}, &NotApprovedError{SHA256: sha, Manifest: m.path}
}

// Approve adds the model that meta describes (its SHA256 must be
// model.onnx's: read it with store.Verify) to the manifest at path,
// creating the file if needed, approved by by under ticket at now. It
// returns the model's entry and whether it was added: a model already
// approved under the same ticket returns its existing entry and false;
// under another ticket, a *ConflictError. Each outcome, refusals
// included, is logged as a model_change event on log.
func Approve(path string, meta model.Metadata, by, ticket string, now time.Time, log *slog.Logger) (Entry, bool, error) {
	entry := Entry{
		SHA256:     strings.ToLower(meta.SHA256),
		Version:    meta.Version,
		ApprovedBy: strings.TrimSpace(by),
		Ticket:     strings.TrimSpace(ticket),
		ApprovedAt: now.UTC().Truncate(time.Second),
	}
	change := Change{Action: ActionApprove, SHA256: entry.SHA256, Version: entry.Version,
		By: entry.ApprovedBy, Ticket: entry.Ticket, Manifest: path}
	refuse := func(err error) (Entry, bool, error) {
		change.Outcome, change.Reason = OutcomeRefused, err.Error()
		change.Log(log)
		return Entry{}, false, err
	}
	switch {
	case !validSHA(entry.SHA256):
		return refuse(fmt.Errorf("approval: model sha256 %q is not 64 hex digits", meta.SHA256))
	case checkField(entry.ApprovedBy) != nil:
		return refuse(fmt.Errorf("approval: approver (--by): %w", checkField(entry.ApprovedBy)))
	case checkField(entry.Ticket) != nil:
		return refuse(fmt.Errorf("approval: ticket: %w", checkField(entry.Ticket)))
	case len(entry.Version) > 128 || strings.IndexFunc(entry.Version, unicode.IsControl) >= 0:
		return refuse(fmt.Errorf("approval: model version %q: at most 128 bytes without control characters", entry.Version))
	}

	unlock, err := lockDir(filepath.Dir(path))
	if err != nil {
		return refuse(fmt.Errorf("approval: locking the manifest's directory: %w", err))
	}
	defer unlock()

	m, err := Load(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		m = &Manifest{path: path}
	case err != nil:
		return refuse(err)
	}
	if old, err := m.Check(entry.SHA256); err == nil {
		if old.Ticket != entry.Ticket {
			return refuse(&ConflictError{Existing: old, Ticket: entry.Ticket, Manifest: path})
		}
		change.Outcome = OutcomeAlreadyApproved
		change.Log(log)
		return old, false, nil
	}
	m.entries = append(m.entries, entry)
	if err := m.write(); err != nil {
		return refuse(err)
	}
	change.Outcome = OutcomeApproved
	change.Log(log)
	return entry, true, nil
}

// write replaces the manifest file through a temporary file (mode 0600)
// and a rename, then syncs the directory.
func (m *Manifest) write() error {
	b, err := json.MarshalIndent(manifestFile{Format: Format, Models: m.entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("approval: encoding the manifest: %w", err)
	}
	dir := filepath.Dir(m.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(m.path)+".*")
	if err != nil {
		return fmt.Errorf("approval: writing the manifest: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, m.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("approval: writing the manifest %s: %w", m.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is done
		d.Close()
	}
	return nil
}

func validSHA(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// checkField checks an approver name or a ticket id.
func checkField(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("is required")
	case len(s) > maxField:
		return fmt.Errorf("longer than %d bytes", maxField)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errors.New("contains control characters")
	}
	return nil
}
