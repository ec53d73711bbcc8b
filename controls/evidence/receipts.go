package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Receipt is the part of a deletion receipt the DeletionReceipts check
// reads (the file layout is in the package documentation). The writer
// (runner forget) may add fields; they are ignored here.
type Receipt struct {
	// ID is the deletion request's id.
	ID string `json:"id"`
	// Subject is the user's pseudonym (a keyed hash), never the user id.
	Subject string `json:"subject"`
	// Time is when the deletion completed.
	Time time.Time `json:"time"`
	// Expected lists the stores the request had to cover, when the writer
	// knows them: a store listed here and absent from Stores is
	// unreported.
	Expected []string `json:"expected,omitempty"`
	// Stores is what was deleted, store by store.
	Stores []StoreReceipt `json:"stores"`
}

// StoreReceipt is one store's part of a receipt.
type StoreReceipt struct {
	Name string `json:"name"`
	// Count is how many records, keys or documents were deleted or made
	// unreadable; nil means the store did not report.
	Count *int64 `json:"count"`
	// Error, if set, says why the store's deletion failed.
	Error string `json:"error,omitempty"`
}

// Problems lists why the receipt is incomplete: no store, a store with
// no count or with an error, an expected or required store unreported.
func (r Receipt) Problems(required ...string) []string {
	var ps []string
	if r.ID == "" {
		ps = append(ps, "no id")
	}
	if r.Subject == "" {
		ps = append(ps, "no subject")
	}
	if r.Time.IsZero() {
		ps = append(ps, "no time")
	}
	if len(r.Stores) == 0 {
		ps = append(ps, "no store reported")
	}
	reported := map[string]bool{}
	for _, s := range r.Stores {
		switch {
		case s.Error != "":
			ps = append(ps, fmt.Sprintf("%s failed: %s", s.Name, s.Error))
		case s.Count == nil:
			ps = append(ps, s.Name+" did not report a count")
		default:
			reported[s.Name] = true
		}
	}
	want := append(slices.Clone(required), r.Expected...)
	sort.Strings(want)
	for _, name := range slices.Compact(want) {
		if !reported[name] && !slices.ContainsFunc(r.Stores, func(s StoreReceipt) bool { return s.Name == name }) {
			ps = append(ps, name+" missing from the receipt")
		}
	}
	return ps
}

// DeletionReceipts is the control that every deletion request has a
// complete receipt: it reads every *.json receipt in dir (see Receipt and
// the package documentation) and fails when one is incomplete or
// unreadable. stores are the stores every receipt must report (those the
// configuration writes to), on top of each receipt's own Expected list. A
// directory that does not exist holds no receipt: no request was made.
func DeletionReceipts(dir string, stores ...string) Check {
	req := slices.Clone(stores)
	return Check{
		ID:       "deletion_receipts",
		Title:    "Every deletion request has a complete receipt, store by store",
		Criteria: []string{"P4.3", "C1.2"},
		Run:      func(ctx context.Context) Result { return deletionReceipts(ctx, dir, req) },
	}
}

func deletionReceipts(ctx context.Context, dir string, required []string) Result {
	declared := "every deletion request in " + dir + " has a receipt reporting every store"
	if len(required) > 0 {
		declared += " (" + strings.Join(required, ", ") + ")"
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return pass(declared, "no receipts directory", "no deletion request was made")
	}
	if err != nil {
		return errResult(declared, "the receipts cannot be listed: "+err.Error())
	}
	var details []string
	total, incomplete := 0, 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errResult(declared, "not evaluated: "+err.Error())
		}
		total++
		r, problems := readReceipt(filepath.Join(dir, e.Name()), required)
		if len(problems) > 0 {
			incomplete++
			details = append(details, fmt.Sprintf("%s: INCOMPLETE: %s", describeReceipt(e.Name(), r), strings.Join(problems, "; ")))
			continue
		}
		details = append(details, describeReceipt(e.Name(), r)+": complete")
	}
	live := fmt.Sprintf("%d receipts, %d complete", total, total-incomplete)
	details = capped(details, maxDetails)
	if incomplete > 0 {
		return fail(declared, live, fmt.Sprintf("%d deletion requests have no complete receipt: the user's data may remain in a store", incomplete), details...)
	}
	if total == 0 {
		return pass(declared, live, "no deletion request was made")
	}
	return pass(declared, live, "every deletion request reports every store", details...)
}

func readReceipt(path string, required []string) (Receipt, []string) {
	var r Receipt
	b, err := os.ReadFile(path)
	if err != nil {
		return r, []string{"unreadable: " + err.Error()}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, []string{"not a receipt: " + err.Error()}
	}
	return r, r.Problems(required...)
}

// describeReceipt is one line per request: id, short pseudonym, time and
// the counts per store.
func describeReceipt(file string, r Receipt) string {
	id := cmpOr(r.ID, file)
	subject := r.Subject
	if len(subject) > 12 {
		subject = subject[:12] + "…"
	}
	var stores []string
	for _, s := range r.Stores {
		switch {
		case s.Error != "":
			stores = append(stores, s.Name+" failed")
		case s.Count == nil:
			stores = append(stores, s.Name+" ?")
		default:
			stores = append(stores, fmt.Sprintf("%s %d", s.Name, *s.Count))
		}
	}
	when := "no time"
	if !r.Time.IsZero() {
		when = r.Time.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s (subject %s, %s; %s)", id, cmpOr(subject, "?"), when, listOrNone(stores))
}
