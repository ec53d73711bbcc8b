package evidence_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aetherai/aether/controls/evidence"
)

func TestEvidenceHTMLIsSelfContainedAndEscaped(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, evidence.WriteHTML(&buf, sampleReport()))
	page := buf.String()
	for _, banned := range []string{"<script", "http://", "https://", "<link", "@import", "src=", "url("} {
		require.NotContains(t, page, banned, "the page must not load or run anything")
	}
	require.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, page, "The served model is approved &lt;sha&gt;")
	require.Contains(t, page, "@media print")
	require.Contains(t, page, `<span class="n" id="count-fail">1</span>`)
	require.Contains(t, page, "2 of 3 controls do not pass.")
	require.Contains(t, page, `<tr id="skipped-deletion_receipts">`)
}

// chromium is the headless browser the rendering test uses.
const chromium = "/usr/bin/chromium"

// TestEvidenceHTMLRendersInChromium loads the page in headless Chromium and
// reads back the DOM it built: every control's row with its status, the
// counts and the escaped text.
func TestEvidenceHTMLRendersInChromium(t *testing.T) {
	_, err := os.Stat(chromium)
	need(t, chromium, err == nil, "install it with: apt-get install -y chromium")

	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	rep := sampleReport()
	require.NoError(t, evidence.WriteHTML(&buf, rep))
	require.NoError(t, os.WriteFile(page, buf.Bytes(), 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--dump-dom", "file://"+page)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "chromium: %s", stderr.String())
	dom := stdout.String()

	require.Contains(t, dom, "<h1>Aether control evidence</h1>")
	for _, c := range rep.Controls {
		row := `<tr id="control-` + c.ID + `" class="status-` + string(c.Status) + `" data-status="` + string(c.Status) + `">`
		require.Contains(t, dom, row, "row of %s", c.ID)
		i := strings.Index(dom, row)
		end := strings.Index(dom[i:], "</tr>")
		require.Positive(t, end)
		cells := dom[i : i+end]
		require.Contains(t, cells, strings.ToUpper(string(c.Status)), "status text of %s", c.ID)
		require.Contains(t, cells, strings.Join(c.Criteria, ", "))
	}
	require.Contains(t, dom, `<span class="n" id="count-total">3</span>`)
	require.Contains(t, dom, `<span class="n" id="count-pass">1</span>`)
	require.Contains(t, dom, `<span class="n" id="count-error">1</span>`)
	require.Contains(t, dom, "the manifest cannot be read: &lt;script&gt;alert(1)&lt;/script&gt;")
	require.NotContains(t, dom, "<script>alert(1)</script>")
	require.Contains(t, dom, `<tr id="skipped-deletion_receipts">`)
}
