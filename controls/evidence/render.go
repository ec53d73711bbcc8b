package evidence

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as indented JSON (format Format, see the
// package documentation for the fields).
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // a file for people too: "<" stays "<"
	return enc.Encode(r)
}

//go:embed report.html.tmpl
var htmlSource string

// page is parsed once: the template is part of the binary, so a parse
// error is a build defect caught by the tests.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper":    func(s Status) string { return strings.ToUpper(string(s)) },
	"join":     func(ss []string) string { return strings.Join(ss, ", ") },
	"rfc3339":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"seconds":  func(s float64) string { return fmt.Sprintf("%.3f s", s) },
	"symbol":   statusSymbol,
	"verdict":  verdict,
	"nonEmpty": func(s string) string { return cmpOr(s, "—") },
}).Parse(htmlSource))

func statusSymbol(s Status) string {
	switch s {
	case StatusPass:
		return "✓"
	case StatusFail:
		return "✗"
	default:
		return "!"
	}
}

func verdict(r Report) string {
	switch {
	case r.Summary.Total == 0:
		return "No control was evaluated."
	case r.OK():
		return fmt.Sprintf("All %d controls pass.", r.Summary.Total)
	default:
		return fmt.Sprintf("%d of %d controls do not pass.", r.Summary.Fail+r.Summary.Error, r.Summary.Total)
	}
}

func cmpOr(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// WriteHTML writes the report as one self-contained HTML page for an
// auditor: no scripts, no external assets, readable printed. Every value
// is escaped by html/template.
func WriteHTML(w io.Writer, r Report) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, r); err != nil {
		return fmt.Errorf("evidence: rendering HTML: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteSummary writes one line per control (status, id, why) and a total,
// for a terminal.
func WriteSummary(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Controls {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.ID, oneLine(c.Why))
	}
	for _, s := range r.NotEvaluated {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", "SKIP", s.ID, oneLine(s.Why))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d controls: %d pass, %d fail, %d error; %d not evaluated\n",
		r.Summary.Total, r.Summary.Pass, r.Summary.Fail, r.Summary.Error, len(r.NotEvaluated))
	return err
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
