package evidence

import (
	"context"
	"fmt"
	"sort"
)

// Drift is a control comparing a declared set with a live one (Kafka ACLs
// derived from the topology against the cluster's, declared topic
// configurations against the brokers'): diff returns the declared items
// not live (missing) and the live items not declared (excess); any of
// either fails. The check's id is name, which must be a valid control id
// ("acl_drift"); set Title on the result for a better one.
func Drift(name string, criteria []string, diff func(ctx context.Context) (missing, excess []string, err error)) Check {
	return Check{
		ID:       name,
		Title:    "What is live matches what is declared: " + name,
		Criteria: append([]string(nil), criteria...),
		Run: func(ctx context.Context) Result {
			declared := "every declared item is live and nothing else is"
			if diff == nil {
				return errResult(declared, "no comparison was given")
			}
			missing, excess, err := diff(ctx)
			if err != nil {
				return errResult(declared, "the live state could not be compared: "+err.Error())
			}
			live := fmt.Sprintf("%d missing, %d excess", len(missing), len(excess))
			if len(missing)+len(excess) == 0 {
				return pass(declared, live, "no drift")
			}
			missing, excess = sorted(missing), sorted(excess)
			var details []string
			for _, m := range missing {
				details = append(details, "missing: "+m)
			}
			for _, e := range excess {
				details = append(details, "excess: "+e)
			}
			why := fmt.Sprintf("drift: %d declared items are not live and %d live items are not declared", len(missing), len(excess))
			return fail(declared, live, why, capped(details, maxDetails)...)
		},
	}
}

func sorted(ss []string) []string {
	ss = append([]string(nil), ss...)
	sort.Strings(ss)
	return ss
}
