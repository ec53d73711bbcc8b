package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// rulesFile is the part of a Prometheus rules file the check reads.
type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// AlertRules is the monitoring control: the Prometheus rules file at path
// must define each required alert with an expression. It fails listing
// the missing ones (or when the file is absent or does not parse, as
// Prometheus would then load none of it). It reads the file, not what a
// Prometheus server has loaded.
func AlertRules(path string, required ...string) Check {
	req := append([]string(nil), required...)
	return Check{
		ID:       "alert_rules",
		Title:    "The alert rules the controls rely on are defined",
		Criteria: []string{"CC7.2"},
		Run:      func(context.Context) Result { return alertRules(path, req) },
	}
}

func alertRules(path string, required []string) Result {
	declared := fmt.Sprintf("%d alerts defined in %s: %s", len(required), path, strings.Join(required, ", "))
	if len(required) == 0 {
		return errResult("required alerts are defined in "+path, "no required alert was given")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fail(declared, "no rules file", "the rules file does not exist: no alert can fire")
	}
	if err != nil {
		return errResult(declared, "the rules file cannot be read: "+err.Error())
	}
	var f rulesFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return fail(declared, "the file does not parse", "Prometheus would refuse the whole file: "+err.Error())
	}
	defined := map[string]string{} // alert -> group
	var empty []string
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if strings.TrimSpace(r.Expr) == "" {
				empty = append(empty, r.Alert)
				continue
			}
			defined[r.Alert] = g.Name
		}
	}
	var missing, details []string
	for _, a := range required {
		if g, ok := defined[a]; ok {
			details = append(details, fmt.Sprintf("%s: defined in group %s", a, g))
		} else {
			missing = append(missing, a)
			details = append(details, a+": MISSING")
		}
	}
	sort.Strings(empty)
	for _, a := range empty {
		details = append(details, a+": has no expression")
	}
	live := fmt.Sprintf("%d alerts in %d groups; %d of %d required present", n, len(f.Groups), len(required)-len(missing), len(required))
	if len(missing) > 0 {
		return fail(declared, live, "missing alerts: "+strings.Join(missing, ", ")+": their failures would go unnoticed", details...)
	}
	return pass(declared, live, "every required alert is defined", details...)
}
